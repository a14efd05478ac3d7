"""`pneumoviewer predict --workers N | --scheduler ADDRESS`: a whole archive on a Dask cluster.

Why Dask distributed (its futures API) and not Ray: the work is a stream of independent,
CPU-bound batches with one model per process, which futures, a worker plugin and the nanny's
restart of dead workers cover; Dask installs as two small pure-Python wheels, starts a local
cluster in seconds and connects to an existing one by address, while Ray's strength, GPU actor
pools across machines, brings a large native runtime this app does not otherwise need.

How a run goes: the client walks the paths lazily, in the single-process order (`collect_images`),
and cuts them into batches of file paths; each batch is one task that returns one small row per
file (the mask's RLE, the score, the call, or the reason it was skipped), never pixels. Each
finished batch is written atomically to a journal beside the output (`OUT.journal/`), so a run
killed anywhere (client, scheduler, a worker) and started again with `--resume` sends only the
batches still missing, and every image is counted exactly once. A worker that dies is replaced
by its nanny and the scheduler gives its batch to another. The CSVs are written last, from the
journal in file order, by the single-process writers: the same files give the same bytes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import pickle
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from distributed import Client, LocalCluster, as_completed, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from pneumoviewer.errors import FileProblem
from pneumoviewer.io.atomic import atomic_write_bytes, atomic_write_text
from pneumoviewer.io.dicom import DicomError, DicomMetadata
from pneumoviewer.io.folder_scan import CandidateKind, examine_candidate, visible_files

if TYPE_CHECKING:
    from pneumoviewer.commands.predict import ImageOutcome
    from pneumoviewer.io.rle import RleConvention
    from pneumoviewer.model.inference import Predictor

DEFAULT_BATCH_SIZE = 32
_PLUGIN_NAME = "pneumoviewer-predictor"
_JOURNAL_FORMAT = 1


class ArchiveError(Exception):
    """Why an archive run cannot start or go on (its journal, its cluster); the message says what to do."""


class RowKind(Enum):
    IMAGE = "predicted"
    PREDICT_PROBLEM = "an image that could not be predicted"
    SCAN_PROBLEM = "a file found in a folder that cannot be read as an image"
    IGNORED = "not an image (skipped silently, as a folder scan does)"


@dataclass(frozen=True)
class ArchiveRow:
    """What a worker sends back for one file: a row of the CSVs or the reason, never pixels."""

    kind: RowKind
    path: Path
    resolved: str  # the file's resolved path: the single-process run predicts each file once
    outcome: ImageOutcome | None = None
    reason: str | None = None  # why it was skipped
    note: str | None = None  # said of an image predicted anyway (scored on request outside the AI's scope)


@dataclass(frozen=True)
class Candidate:
    path: Path
    named: bool  # named on the command line (any image format) rather than found in a folder


def stream_candidates(paths: Sequence[Path], problems: list[FileProblem]) -> Iterator[Candidate]:
    """Every file `collect_images` would look at, in its order, one at a time (folders are walked
    lazily, so a million paths are never held). Missing paths and unlistable folders go to `problems`."""
    for path in map(Path, paths):
        if path.is_dir():
            for found in visible_files(path, problems.append):
                yield Candidate(found, named=False)
        elif path.is_file():
            yield Candidate(path, named=True)
        else:
            problems.append(FileProblem(path, "no such file or folder"))


def batched(candidates: Iterable[Candidate], size: int) -> Iterator[list[Candidate]]:
    iterator = iter(candidates)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


class PredictorPlugin(WorkerPlugin):
    """Loads the model once per worker process, when the worker starts (and again in a replacement)."""

    name = _PLUGIN_NAME

    def __init__(self, model: Path | None, torch_threads: int) -> None:
        self.model = model
        self.torch_threads = torch_threads
        self.predictor: Predictor | None = None

    def setup(self, worker: Any) -> None:
        from pneumoviewer.model.inference import Predictor
        from pneumoviewer.model.network import select_device
        from pneumoviewer.paths import default_model_path

        checkpoint = self.model if self.model is not None else default_model_path()
        self.predictor = Predictor(checkpoint, device=select_device(self.torch_threads))


def predict_batch(
    candidates: Sequence[Candidate], settings: Mapping[str, Any], convention: str, score_unvalidated: bool
) -> list[ArchiveRow]:
    """The task a worker runs: one row per candidate, in order. Never raises for one file."""
    from pneumoviewer.commands._batch import ImageFile, Predicted, predict_files
    from pneumoviewer.commands.predict import image_outcome
    from pneumoviewer.io.rle import RleConvention
    from pneumoviewer.model.postprocess import InferenceSettings

    predictor = cast(PredictorPlugin, get_worker().plugins[_PLUGIN_NAME]).predictor
    assert predictor is not None, "the plugin's setup loads it before any task runs"
    rows: dict[int, ArchiveRow] = {}
    images: list[tuple[int, str, ImageFile]] = []  # (position in the batch, resolved path, the file)
    for position, candidate in enumerate(candidates):
        resolved = str(candidate.path.resolve())
        verdict = None if candidate.named else examine_candidate(candidate.path)
        if verdict is None or isinstance(verdict, DicomMetadata):
            images.append((position, resolved, ImageFile(candidate.path, None)))
        elif isinstance(verdict, DicomError):
            rows[position] = ArchiveRow(RowKind.SCAN_PROBLEM, candidate.path, resolved, reason=verdict.reason)
        else:
            assert isinstance(verdict, CandidateKind)
            rows[position] = ArchiveRow(RowKind.IGNORED, candidate.path, resolved)
    results = predict_files(predictor, [image for _, _, image in images], InferenceSettings.from_dict(settings),
                            score_unvalidated=score_unvalidated)
    for (position, resolved, image), result in zip(images, results, strict=True):
        if isinstance(result, Predicted):
            outcome = image_outcome(result, RleConvention(convention), calibrated=predictor.calibration is not None)
            note = f"{result.ai_warning}; scored on request (--score-unvalidated)" if result.ai_warning else None
            rows[position] = ArchiveRow(RowKind.IMAGE, image.path, resolved, outcome=outcome, note=note)
        else:
            rows[position] = ArchiveRow(RowKind.PREDICT_PROBLEM, image.path, resolved, reason=result.reason)
    return [rows[position] for position in range(len(candidates))]


class Journal:
    """The finished batches of one run, one atomically written file each, beside the output."""

    def __init__(self, folder: Path, identity: Mapping[str, Any], resume: bool) -> None:
        self.folder = folder
        run_file = folder / "run.json"
        if run_file.exists():
            if not resume:
                raise ArchiveError(f"{folder}: an interrupted run's journal is here: add --resume to finish "
                                   "it, or delete the folder to start again")
            try:
                recorded = json.loads(run_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise ArchiveError(f"{run_file}: cannot be read ({error}); delete {folder} to start again") \
                    from error
            if recorded != dict(identity):
                changed = sorted(key for key in identity if recorded.get(key) != identity[key])
                raise ArchiveError(f"{folder}: the interrupted run had other {', '.join(changed) or 'settings'}; "
                                   "resume it with the same paths, model and settings, or delete the folder")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(run_file, json.dumps(dict(identity), indent=1, sort_keys=True))

    def _batch_file(self, index: int) -> Path:
        return self.folder / f"batch-{index:08d}.pickle"

    def has(self, index: int) -> bool:
        return self._batch_file(index).exists()

    def record(self, index: int, rows: Sequence[ArchiveRow]) -> None:
        atomic_write_bytes(self._batch_file(index), pickle.dumps(list(rows), protocol=pickle.HIGHEST_PROTOCOL))

    def rows(self, index: int) -> list[ArchiveRow]:
        # The journal is this run's own output, written by `record`: unpickling it is as safe as the run.
        with open(self._batch_file(index), "rb") as stream:
            return pickle.load(stream)  # noqa: S301

    def holds_batches(self) -> bool:
        return any(self.folder.glob("batch-*.pickle"))

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class ArchiveOptions:
    paths: Sequence[Path]
    model: Path | None
    settings: Mapping[str, Any]
    convention: RleConvention
    workers: int | None  # a local cluster of this many worker processes
    scheduler: str | None  # or an existing cluster's scheduler address
    resume: bool
    journal: Path
    score_unvalidated: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE


def run_identity(options: ArchiveOptions, model_key: str) -> dict[str, Any]:
    """What must be the same for `--resume` to continue a run (not the cluster: that may change)."""
    return {
        "format": _JOURNAL_FORMAT,
        "paths": [str(Path(path).resolve()) for path in options.paths],
        "model": model_key,
        "settings": json.loads(json.dumps(dict(options.settings), sort_keys=True, default=str)),
        "rle": options.convention.value,
        "batch_size": options.batch_size,
        "score_unvalidated": options.score_unvalidated,
    }


def open_client(options: ArchiveOptions) -> Client:
    """A client on the scheduler named, or on a new local cluster (one single-threaded worker process
    per `workers`, torch's threads shared out among them). Raises ArchiveError when none can be had."""
    import logging

    try:
        if options.scheduler is not None:
            client = Client(options.scheduler, timeout="20s")
            torch_threads = 1  # the documented layout: one worker process per core (`--nthreads 1`)
        else:
            workers = max(1, options.workers or 1)
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, silence_logs=logging.ERROR,
                dashboard_address=":0" if _has_dashboard() else None,
            )
            client = Client(cluster)
            torch_threads = max(1, (os.cpu_count() or 1) // workers)
    except (OSError, TimeoutError) as error:
        where = options.scheduler or "a local cluster"
        raise ArchiveError(f"cannot reach {where}: {error}") from error
    try:
        client.register_plugin(PredictorPlugin(options.model, torch_threads), name=_PLUGIN_NAME)
    except Exception as error:  # noqa: BLE001 - whatever stops a worker loading the model stops the run
        _close(client) if options.scheduler is None else client.close()
        raise ArchiveError(f"a worker could not load the model: {error}") from error
    return client


def _has_dashboard() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def count_candidates(paths: Sequence[Path]) -> int:
    """How many files the run will look at (a quick walk, names only), for the progress bar's ETA."""
    return sum(1 for _ in stream_candidates(paths, []))


def predict_archive(
    options: ArchiveOptions,
    model_key: str,
    on_problem: Callable[[FileProblem], None],
    on_note: Callable[[str], None],
    progress: Any,
) -> tuple[Journal, int]:
    """Predict every batch not yet in the journal; returns the complete journal and its batch count.

    `on_problem` hears each problem once, when its batch arrives; `on_note` the cluster's dashboard
    link and what is said of images predicted anyway; `progress.update(n)` counts finished files.
    Raises ArchiveError (a lost cluster, a batch that kept killing workers) with the finished batches
    kept for `--resume`."""
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    journal = Journal(options.journal, run_identity(options, model_key), options.resume)
    walk_problems: list[FileProblem] = []
    try:
        client = open_client(options)
    except ArchiveError:
        if not journal.holds_batches():  # nothing was done: no journal to resume from
            journal.remove()
        raise
    if _has_dashboard() and client.dashboard_link:
        on_note(f"Dask dashboard: {client.dashboard_link}")
    batches = 0
    try:
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        window = 2 * workers  # batches in flight: every worker busy, few rows held
        pending = as_completed()
        submitted: dict[Any, tuple[int, int]] = {}  # future key -> (batch index, files)
        settings = dict(options.settings)
        tag = hashlib.sha1(str(journal.folder.resolve()).encode()).hexdigest()[:10]

        def settle(future: Any) -> None:
            index, size = submitted.pop(future.key)
            try:
                rows = future.result()
            except KilledWorker as error:
                raise ArchiveError(f"batch {index} ({size} files) killed a worker process each time it ran "
                                   f"({error}); the other batches are kept: --resume tries it again") from error
            journal.record(index, rows)
            for row in rows:
                if row.reason is not None:
                    on_problem(FileProblem(row.path, row.reason))
                elif row.note is not None:
                    on_note(f"pneumoviewer: {row.path}: {row.note}")
            progress.update(size)

        for index, batch in enumerate(batched(stream_candidates(options.paths, walk_problems), options.batch_size)):
            batches = index + 1
            if journal.has(index):
                progress.update(len(batch))
                continue
            future = client.submit(predict_batch, batch, settings, options.convention.value, options.score_unvalidated,
                                   key=f"pneumoviewer-batch-{tag}-{index}", pure=False)
            submitted[future.key] = (index, len(batch))
            pending.add(future)
            while pending.count() >= window:
                settle(next(pending))
        for future in pending:
            settle(future)
    except (OSError, TimeoutError, FutureCancelledError) as error:
        raise ArchiveError(f"lost the cluster ({type(error).__name__}: {error}); the finished batches are "
                           f"kept in {journal.folder}: run again with --resume") from error
    finally:
        for problem in walk_problems:
            on_problem(problem)
        _close(client)
    return journal, batches


def _close(client: Client) -> None:
    cluster = client.cluster
    client.close()
    if cluster is not None:
        cluster.close()


def journal_outcomes(journal: Journal, batches: int, on_problem: Any) -> Iterator[ImageOutcome]:
    """The predicted images in file order, as the single-process run keeps them: each file once (by
    resolved path), each ImageId once (a later file with the same id is skipped, with the reason)."""
    seen_files: set[str] = set()
    first_path: dict[str, Path] = {}
    for index in range(batches):
        for row in journal.rows(index):
            if row.kind in (RowKind.IGNORED, RowKind.SCAN_PROBLEM) or row.resolved in seen_files:
                continue
            seen_files.add(row.resolved)
            if row.outcome is None:
                continue
            outcome = row.outcome
            if outcome.image_id in first_path:
                on_problem(FileProblem(row.path, f"same ImageId as {first_path[outcome.image_id]}; "
                                       "not predicted twice"))
                continue
            first_path[outcome.image_id] = row.path
            yield outcome


def predict_on_cluster(args: Any, convention: RleConvention, overrides: Mapping[str, Any]) -> int:
    """`pneumoviewer predict` with --workers/--scheduler/--resume; returns the exit status."""
    import time

    from pneumoviewer.commands import fail, report
    from pneumoviewer.commands._settings import request_settings
    from pneumoviewer.commands.predict import default_scores_path, write_outputs
    from pneumoviewer.model.card import CheckpointError, load_card
    from pneumoviewer.model.identity import model_fingerprint
    from pneumoviewer.paths import default_model_path
    from pneumoviewer.progress import progress_bar

    if args.workers is None and args.scheduler is None:
        return fail("--resume finishes a --workers or --scheduler run: give one of them", status=2)
    if args.workers is not None and args.scheduler is not None:
        return fail("--workers starts a local cluster, --scheduler uses an existing one: give one of them", status=2)
    unsupported = [flag for flag, value in (("--cam-dir", args.cam_dir), ("--overlay-dir", args.overlay_dir),
                                            ("--seg-dir", args.seg_dir)) if value is not None]
    if unsupported:
        return fail(f"{', '.join(unsupported)}: not available on a cluster yet (run without --workers)", status=2)
    checkpoint = args.model if args.model is not None else default_model_path()
    try:  # the card and the settings are checked before any worker starts; the weights, by each worker
        card = load_card(checkpoint)
        settings = request_settings(card.settings, overrides).to_dict()
    except CheckpointError as error:
        return fail(str(error))
    except ValueError as error:
        return fail(f"settings: {error}")
    out: Path = args.out
    scores: Path = args.scores if args.scores is not None else default_scores_path(out)
    options = ArchiveOptions(
        paths=args.paths, model=args.model, settings=settings, convention=convention, workers=args.workers,
        scheduler=args.scheduler, resume=args.resume, journal=out.with_name(out.name + ".journal"),
        batch_size=args.batch_size, score_unvalidated=args.score_unvalidated,
    )
    problems = 0
    progress = progress_bar(count_candidates(args.paths), "predict", unit="file")

    def on_problem(problem: FileProblem) -> None:
        nonlocal problems
        problems += 1
        report(problem, progress)

    started = time.perf_counter()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        journal, batches = predict_archive(options, model_fingerprint(checkpoint), on_problem,
                                           lambda note: progress.write(note, file=sys.stderr), progress)
    except ArchiveError as error:
        return fail(str(error))
    except KeyboardInterrupt:
        return fail(f"interrupted: the finished batches are kept in {options.journal}; the same command with "
                    "--resume finishes the rest", status=130)
    finally:
        progress.close()
    seconds = time.perf_counter() - started
    outcomes = journal_outcomes(journal, batches, on_problem)
    first = next(outcomes, None)
    if first is None:  # as the single-process run: refused before any CSV is written
        return fail(f"no image could be predicted (the journal is kept in {options.journal})")
    try:
        scores.parent.mkdir(parents=True, exist_ok=True)
        predicted, positives, flagged = write_outputs(out, scores, itertools.chain([first], outcomes))
    except OSError as error:
        return fail(f"{error.filename or out}: could not be written ({error.strerror or error})")
    journal.remove()
    print(f"Predicted {predicted} image(s): {positives} positive, {predicted - positives} negative "
          f"(challenge call, masks); {flagged} flagged for triage; {problems} skipped. "
          f"{progress.n / max(seconds, 1e-9):.1f} files/s on the cluster.\n"
          f"Masks: {out}\nScores (highest first): {scores}")
    return 0
