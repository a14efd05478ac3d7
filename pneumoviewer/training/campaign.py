"""The training campaign: the protocol's runs one after another, niced and resumable, with a log and a status.

`scripts/campaign.py` is the command line (`run`, `start`, `status`, `stop`, `pack`); the app never
imports this module. The protocol (`docs/campaign.toml`) lists runs by name with their
`pneumoviewer train` arguments; each run trains in `<root>/runs/<name>` under `nice -n 19`, always
with `--resume` (so a killed campaign continues where its last checkpoint left it), the shared
decoded-image cache `<root>/cache` and the campaign log `<root>/campaign.jsonl` (one JSON line per
start, finished epoch and finished run, written by the trainer, plus the driver's run-done and
run-failed lines). A run is done when `<root>/runs/<name>/done.json` records the same arguments;
change a run's arguments (more epochs, say) and it continues from its state.

Only one campaign runs at a time: `<root>/campaign.lock` is held with `flock` by the driver and
inherited by its trainer, so the lock is free exactly when neither lives (a lock file left by a
killed process is stale by construction and simply taken over); the file names the holder's PID.
The root lives outside the work tree (default `../campaign` beside the checkout, or `$PNEUMOVIEWER_CAMPAIGN_ROOT`)
so that it survives a fresh checkout. It does not survive a new machine: `park` copies what each run
needs to go on elsewhere (a running run's last checkpoint, a finished run's network and record) into
the repository's `campaign-state/`, to be committed, and every campaign start restores from there the
runs its root lacks.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

from pneumoviewer.io.atomic import atomic_write_bytes
from pneumoviewer.training.predictions import PREDICTIONS_FILE
from pneumoviewer.training.state import STATE_FILE, write_compact_state

ROOT_VARIABLE = "PNEUMOVIEWER_CAMPAIGN_ROOT"
REPO_ROOT = Path(__file__).resolve().parents[2]
# Beside the checkout, like ../shared: a fresh clone or checkout of the work tree leaves it alone.
DEFAULT_ROOT = REPO_ROOT.parent / "campaign"
DEFAULT_PROTOCOL = REPO_ROOT / "docs" / "campaign.toml"
LOG_FILE = "campaign.jsonl"
LOCK_FILE = "campaign.lock"
RESUME_FILE = "HOW-TO-RESUME.txt"
# Committed with the code, so that a campaign continues on whatever machine checks the repository out.
DEFAULT_PARKING = REPO_ROOT / "campaign-state"
# What a run needs to go on in another root: a finished run its record and network (the ship step
# rebuilds its held-out predictions from them), an unfinished one its resumable state.
PARKED_WHEN_DONE = ("done.json", "model.safetensors", "model.json")
PARKED_WHEN_RUNNING = (STATE_FILE, "progress.json")


class CampaignBusy(RuntimeError):
    """Another campaign (or its trainer) holds the lock."""


@dataclass(frozen=True)
class Run:
    name: str
    args: list[str]  # `pneumoviewer train` arguments, placeholders filled in
    measures: str = ""

    def value(self, flag: str, default: int) -> int:
        """An integer flag's value in `args` (e.g. --epochs), or `default`."""
        return int(self.args[self.args.index(flag) + 1]) if flag in self.args else default


def default_root() -> Path:
    return Path(os.environ.get(ROOT_VARIABLE, str(DEFAULT_ROOT)))


def read_protocol(path: Path) -> list[Run]:
    """The runs of a protocol file: `[paths]` placeholders, `[defaults] args`, then `[[run]]` tables in order.

    `{name}` in paths (`{data}`, `{weights}`, ...) are filled in every argument; a relative path is
    relative to the repository root (`../shared/data` beside the checkout). The defaults' args come
    first, so a run's own args can override them (argparse keeps the last value).
    """
    with open(path, "rb") as stream:
        protocol = tomllib.load(stream)
    paths = {key: str((REPO_ROOT / str(value)).resolve()) for key, value in protocol.get("paths", {}).items()}
    defaults = list(protocol.get("defaults", {}).get("args", []))
    runs = []
    for table in protocol.get("run", []):
        args = [str(item).format(**paths) for item in defaults + list(table.get("args", []))]
        runs.append(Run(str(table["name"]), args, str(table.get("measures", ""))))
    names = [run.name for run in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: run names must be unique ({names})")
    return runs


def folds_of(runs: list[Run], recipe: Run) -> list[Run]:
    """The runs that train `recipe` on its split's folds: the same arguments but for --fold, one run per fold.

    A protocol mixes a recipe's folds with recipe steps judged on some fold (`--rendering-augmentation` on
    fold 0, say); only one recipe's folds pool into out-of-fold predictions for every image.
    """
    def without_fold(run: Run) -> list[str]:
        if "--fold" not in run.args:
            return run.args
        at = run.args.index("--fold")
        return run.args[:at] + run.args[at + 2:]

    folds: dict[int, Run] = {}
    for run in runs:
        if "--folds" in run.args and without_fold(run) == without_fold(recipe):
            folds.setdefault(run.value("--fold", 0), run)
    return [folds[fold] for fold in sorted(folds)]


def train_command(run: Run, root: Path, python: str = sys.executable) -> list[str]:
    """The niced `pneumoviewer train` invocation of `run` in `root`."""
    return ["nice", "-n", "19", python, "-m", "pneumoviewer", "train", *run.args,
            "--out", str(root / "runs" / run.name), "--cache-dir", str(root / "cache"),
            "--log-file", str(root / LOG_FILE), "--resume"]


def is_done(run: Run, root: Path) -> bool:
    done = root / "runs" / run.name / "done.json"
    return done.is_file() and json.loads(done.read_text()).get("args") == run.args


def park(protocol: Path, root: Path, parking: Path = DEFAULT_PARKING) -> list[Path]:
    """Copy into `parking/<run>/` what each run of `root` needs to go on elsewhere; returns the files written.

    A finished run leaves `PARKED_WHEN_DONE`, a started one `PARKED_WHEN_RUNNING` (its checkpoint is
    replaced by rename, so a copy taken while it trains is a whole one, at most a few minutes old; it
    is parked with its optimizer moments in bfloat16, `state.write_compact_state`, a third smaller);
    what a run parked earlier and no longer needs (a state once it is done) is removed. Runs that
    have not started are left alone.
    """
    written: list[Path] = []
    for run in read_protocol(protocol):
        source, target = root / "runs" / run.name, parking / run.name
        keep: tuple[str, ...]
        if is_done(run, root):
            keep = PARKED_WHEN_DONE
        elif (source / STATE_FILE).is_file():
            keep = PARKED_WHEN_RUNNING
        else:
            continue
        target.mkdir(parents=True, exist_ok=True)
        for stale in set(PARKED_WHEN_DONE + PARKED_WHEN_RUNNING) - set(keep):
            (target / stale).unlink(missing_ok=True)
        for name in keep:
            if name == STATE_FILE:
                write_compact_state(source / name, target / name)
            elif (source / name).is_file():
                atomic_write_bytes(target / name, (source / name).read_bytes())
            else:
                continue
            written.append(target / name)
    return written


def restore_parked(protocol: Path, root: Path, parking: Path = DEFAULT_PARKING) -> list[str]:
    """Copy parked runs into `root` where it has neither their record nor their state; returns their names.

    A root that already holds a run's state or its `done.json` is further along or the same, and wins.
    """
    restored = []
    for run in read_protocol(protocol):
        source, target = parking / run.name, root / "runs" / run.name
        if not source.is_dir() or (target / "done.json").is_file() or (target / STATE_FILE).is_file():
            continue
        names = [name for name in PARKED_WHEN_DONE + PARKED_WHEN_RUNNING if (source / name).is_file()]
        if not names:
            continue
        target.mkdir(parents=True, exist_ok=True)
        for name in names:  # whole files or none: a kill mid-copy must not leave a damaged state behind
            atomic_write_bytes(target / name, (source / name).read_bytes())
        log_event(root, "run-restored", run=run.name, parking=str(source), files=names)
        restored.append(run.name)
    return restored


def acquire_lock(root: Path) -> IO[str]:
    """Take `<root>/campaign.lock` (flock) and write our PID in it; raises `CampaignBusy` if it is held."""
    root.mkdir(parents=True, exist_ok=True)
    stream = open(root / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 - held for the campaign's life
    try:
        fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        stream.seek(0)
        holder = stream.read().strip() or "unknown"
        stream.close()
        raise CampaignBusy(f"a campaign is already running in {root} ({holder})") from None
    stream.seek(0)
    stale = stream.read().strip()
    stream.seek(0)
    stream.truncate()
    stream.write(f"pid {os.getpid()} since {datetime.now().isoformat(timespec='seconds')}\n")
    stream.flush()
    if stale:
        print(f"took over a stale lock ({stale}: no longer running)", flush=True)
    return stream


def lock_holder(root: Path) -> str | None:
    """What the lock file says about its holder when it is held, else None (free or stale)."""
    path = root / LOCK_FILE
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as stream:
        try:
            fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return stream.read().strip() or "unknown"
        fcntl.flock(stream.fileno(), fcntl.LOCK_UN)
        return None


def log_event(root: Path, event: str, **values: Any) -> None:
    line = {"time": datetime.now().isoformat(timespec="seconds"), "event": event, **values}
    with open(root / LOG_FILE, "a", encoding="utf-8") as log:
        log.write(json.dumps(line) + "\n")


def run_campaign(protocol: Path, root: Path, python: str = sys.executable, parking: Path = DEFAULT_PARKING) -> int:
    """Run every run of `protocol` that is not done, one at a time; returns 0 when all are done.

    Runs parked in `parking` (`park`) that the root lacks are restored first; the held-out predictions of
    restored finished runs are rebuilt once nothing is left to train.

    The protocol is re-read before each run, so runs added or extended meanwhile are picked up. A
    failed run is logged (with the end of its output in `<run>/train.log`) and the next one starts;
    it is retried at the next start. SIGTERM/SIGINT stop the trainer and the campaign.
    """
    lock = acquire_lock(root)
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, _frame: FrameType | None) -> None:
        if child is not None and child.poll() is None:
            child.terminate()
        log_event(root, "campaign-stopped", signal=signal.Signals(signum).name)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    _lower_autogroup_priority()
    resume = f"cd {REPO_ROOT} && .venv/bin/python scripts/campaign.py start --protocol {protocol} --root {root}"
    (root / RESUME_FILE).write_text(
        "A killed or interrupted campaign (the end of a session, a reboot) continues every run from its last\n"
        f"checkpoint (runs/<name>/last-state.pt, at most a few minutes old) with:\n\n    {resume}\n\n"
        "status: scripts/campaign.py status; stop: scripts/campaign.py stop (docs/model.md, 'Training campaign').\n"
        "On a new machine this root is gone: before a session ends, `scripts/campaign.py park` and commit\n"
        f"{parking}; a start there restores every parked run this root lacks.\n"
    )
    log_event(root, "campaign-started", pid=os.getpid(), protocol=str(protocol), resume=resume)
    restore_parked(protocol, root, parking)
    failed: set[str] = set()
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]), "PYTHONUNBUFFERED": "1"}

    def trainer(command: list[str], out: Path) -> int:
        nonlocal child
        with open(out / "train.log", "ab") as output:
            child = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=environment, pass_fds=(lock.fileno(),))
            status = child.wait()
        child = None
        return status

    while True:
        pending = [run for run in read_protocol(protocol) if not is_done(run, root) and run.name not in failed]
        if not pending:
            break
        run = pending[0]
        out = root / "runs" / run.name
        out.mkdir(parents=True, exist_ok=True)
        command = train_command(run, root, python)
        log_event(root, "run-started", run=run.name, command=shlex.join(command))
        status = trainer(command, out)
        if status == 0:
            (out / "done.json").write_text(json.dumps({"args": run.args, "finished": time.time()}) + "\n")
            log_event(root, "run-done", run=run.name)
        else:
            failed.add(run.name)
            log_event(root, "run-failed", run=run.name, status=status, log=str(out / "train.log"))
    # A finished run restored from the parking came without its held-out predictions, which only the ship
    # step reads. They are rebuilt last: training time survives the end of a session (checkpoints, parking),
    # a rebuild cut short does not, and a new machine starts with a few of them (minutes each) to redo.
    for run in read_protocol(protocol):
        out = root / "runs" / run.name
        if is_done(run, root) and not (out / PREDICTIONS_FILE).is_file():
            status = trainer([*train_command(run, root, python), "--rebuild-held-out"], out)
            log_event(root, "held-out-rebuilt" if status == 0 else "held-out-rebuild-failed", run=run.name,
                      status=status, log=str(out / "train.log"))
    log_event(root, "campaign-finished", failed=sorted(failed))
    lock.close()
    return 1 if failed else 0


def _lower_autogroup_priority() -> None:
    """Nice 19 for this session's scheduling group too, so the trainer only takes CPU nobody else wants.

    With the kernel's autogroups (Linux's default on desktops and here), a process's nice value only
    ranks it against its own session: the detached campaign is a session of its own, and at plain
    nice 19 it still got an equal share of the cores beside a test run.
    """
    with contextlib.suppress(OSError):  # not Linux, or autogroups off: plain nice is what counts then
        Path("/proc/self/autogroup").write_text("19")


def start_in_background(protocol: Path, root: Path, parking: Path = DEFAULT_PARKING) -> int:
    """`run_campaign` detached (new session, nice 19, output in `<root>/campaign.out`); returns its PID."""
    root.mkdir(parents=True, exist_ok=True)
    holder = lock_holder(root)
    if holder is not None:
        raise CampaignBusy(f"a campaign is already running in {root} ({holder})")
    script = REPO_ROOT / "scripts" / "campaign.py"
    with open(root / "campaign.out", "ab") as output:
        process = subprocess.Popen(
            ["nice", "-n", "19", sys.executable, str(script), "run", "--protocol", str(protocol), "--root", str(root),
             "--parking", str(parking)],
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    # Two starts at once both pass the check above; only one gets the lock, the other exits: say which.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CampaignBusy(f"the campaign did not start (status {process.returncode}, see {root / 'campaign.out'}):"
                               f" {lock_holder(root) or 'no holder'}")
        if (lock_holder(root) or "").startswith(f"pid {process.pid} "):
            return process.pid
        time.sleep(0.2)
    return process.pid


def stop_campaign(root: Path) -> str:
    holder = lock_holder(root)
    if holder is None:
        return "no campaign is running"
    pid = int(holder.split()[1])
    os.kill(pid, signal.SIGTERM)
    return f"sent SIGTERM to the campaign (pid {pid}); its trainer stops, the last checkpoint stays"


def status(protocol: Path, root: Path) -> dict[str, Any]:
    """Where the campaign stands: the lock holder, each run's state, the current run's progress, ETAs."""
    runs = read_protocol(protocol)
    report: dict[str, Any] = {"root": str(root), "running": lock_holder(root), "runs": []}
    seconds_per_step: float | None = None
    for run in runs:
        out = root / "runs" / run.name
        progress = _read_json(out / "progress.json")
        entry: dict[str, Any] = {"name": run.name, "state": "done" if is_done(run, root) else "pending"}
        epochs, steps = run.value("--epochs", 8), run.value("--steps-per-epoch", 0)
        if progress is not None and entry["state"] != "done":
            entry["state"] = progress["phase"] if report["running"] else f"stopped ({progress['phase']})"
            epochs, steps = int(progress["epochs"]), int(progress["steps_per_epoch"])
            entry.update({key: progress.get(key) for key in (
                "epoch", "step", "epochs", "steps_per_epoch", "seconds_per_step", "recent_loss", "last_epoch")})
            entry["updated_seconds_ago"] = round(time.time() - progress["updated"])
            if progress.get("checkpoint"):
                entry["checkpoint"] = {**progress["checkpoint"],
                                       "seconds_ago": round(time.time() - progress["checkpoint"]["time"])}
            seconds_per_step = progress.get("seconds_per_step") or seconds_per_step
            remaining = (epochs - int(progress["epoch"])) * steps - int(progress["step"])
            entry["eta_hours"] = _hours(remaining, steps, seconds_per_step, progress.get("last_epoch"))
        elif entry["state"] == "pending":
            entry["eta_hours"] = _hours(epochs * steps, steps, seconds_per_step, None) if steps else None
        report["runs"].append(entry)
    etas = [entry.get("eta_hours") for entry in report["runs"] if entry["state"] != "done"]
    report["eta_hours_all"] = round(sum(etas), 1) if etas and all(eta is not None for eta in etas) else None
    report["last_events"] = _tail(root / LOG_FILE, 3)
    return report


def format_status(report: dict[str, Any]) -> str:
    lines = [f"campaign root {report['root']}: " + (f"running ({report['running']})" if report["running"]
                                                    else "not running")]
    for entry in report["runs"]:
        line = f"  {entry['name']}: {entry['state']}"
        if "epoch" in entry:
            line += (f", epoch {entry['epoch'] + 1 if entry['epoch'] < entry['epochs'] else entry['epoch']}"
                     f"/{entry['epochs']} step {entry['step']}/{entry['steps_per_epoch']}"
                     f", {entry['seconds_per_step']} s/step, loss {entry['recent_loss']}")
            if entry.get("checkpoint"):
                line += f", checkpoint {entry['checkpoint']['seconds_ago'] // 60} min ago"
        if entry.get("eta_hours") is not None:
            line += f", ETA {entry['eta_hours']} h"
        lines.append(line)
        if entry.get("last_epoch"):
            figures = entry["last_epoch"]
            lines.append("    last epoch: " + ", ".join(
                f"{key} {figures[key]}" for key in ("epoch", "train_loss", "challenge_score", "all_empty_score",
                                                     "roc_auc", "roc_auc_presence_head", "minutes") if key in figures))
    if report["eta_hours_all"] is not None:
        lines.append(f"  all remaining runs: about {report['eta_hours_all']} h")
    lines += ["  log: " + json.dumps(event) for event in report["last_events"]]
    return "\n".join(lines)


def _hours(remaining_steps: int, steps_per_epoch: int, seconds_per_step: float | None,
           last_epoch: dict[str, Any] | None) -> float | None:
    """Remaining time: by the last epoch's minutes (validation included) when known, else by s/step."""
    if last_epoch and steps_per_epoch:
        return round(remaining_steps / steps_per_epoch * float(last_epoch["minutes"]) / 60, 1)
    if seconds_per_step:
        return round(remaining_steps * seconds_per_step / 3600, 1)
    return None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def _tail(path: Path, count: int) -> list[dict[str, Any]]:
    try:
        lines = path.read_text().splitlines()[-count:]
    except OSError:
        return []
    return [json.loads(line) for line in lines if line.strip()]
