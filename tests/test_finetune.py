"""Learning from corrections: reviewed cases checked, the held-out slice, the gate, model versions, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_labels_subset

from pneumoviewer.cli import main
from pneumoviewer.io.annotations import read_annotation_rows
from pneumoviewer.io.dicom import read_header
from pneumoviewer.model.versions import BUNDLED, ModelRegistry, RegistryError
from pneumoviewer.paths import default_model_path
from pneumoviewer.review.case import Case, ReviewStatus
from pneumoviewer.review.session import ReviewSession
from pneumoviewer.review.training_set import (
    ReviewedCases,
    autosaved_cases,
    read_snapshot,
    readiness_problem,
    reviewed_cases,
    write_snapshot,
)
from pneumoviewer.training import finetune as ft
from pneumoviewer.training.gate import Decision, ImageResults, SliceFigures, decide


@pytest.fixture(scope="module")
def reviewed_csv(siim_labels_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 SIIM images as a site's reviewed cases: 12 with a pneumothorax, 28 without."""
    path = tmp_path_factory.mktemp("reviewed") / "reviewed.csv"
    write_labels_subset(siim_labels_csv, path, positives=12, negatives=28)
    return path


@pytest.fixture(scope="module")
def finetuned(reviewed_csv: Path, siim_dir: Path, random_checkpoint: Path,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[ft.FinetuneResult, list[set[str]]]:
    """One short fine-tune of the small random model; also which image ids each batch source held."""
    sources: list[set[str]] = []
    original = ft._Source.__init__

    def recording(self: ft._Source, examples: ft._Examples, *args: object, **kwargs: object) -> None:
        sources.append({image.image_id for image in examples.images})
        original(self, examples, *args, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ft._Source, "__init__", recording)
        out = tmp_path_factory.mktemp("finetune")
        options = ft.FinetuneOptions(out=out, start_model=random_checkpoint, minutes=0.05, rehearsal_images=0,
                                     forgetting=False, cache_dir=out / "cache", threads=1)
        result = ft.finetune(ft.cases_from_csv(reviewed_csv, siim_dir), options)
    return result, sources


def test_cases_held_apart_to_fit_the_thresholds_are_neither_trained_on_nor_held_out(
    reviewed_csv: Path, siim_dir: Path, random_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources: list[tuple[set[str], bool]] = []
    original = ft._Source.__init__

    def recording(self: ft._Source, examples: ft._Examples, spec: object, seed: int, balanced: bool = True) -> None:
        sources.append(({image.image_id for image in examples.images}, balanced))
        original(self, examples, spec, seed, balanced)  # type: ignore[arg-type]

    monkeypatch.setattr(ft._Source, "__init__", recording)
    options = ft.FinetuneOptions(out=tmp_path, start_model=random_checkpoint, minutes=0.03, rehearsal_images=0,
                                 forgetting=False, cache_dir=tmp_path / "cache", threads=1, fit_fraction=0.34,
                                 site_sampling="prevalence")
    result = ft.finetune(ft.cases_from_csv(reviewed_csv, siim_dir), options)
    card = json.loads(result.model.with_suffix(".json").read_text())
    fitted = set(card["training"]["fitted_on_ids"])
    assert (len(result.held_out), len(result.trained_on), len(fitted)) == (10, 20, 10)
    assert sources == [(set(result.trained_on), False)]  # trained on the 20 alone, each case equally often
    assert not fitted & set(result.trained_on) and not fitted & set(result.held_out)
    assert card["operating_points"]["challenge"]["threshold"] == card["settings"]["presence_threshold"]
    assert card["training"]["recipe"]["fit_fraction"] == 0.34
    with pytest.raises(ValueError, match="site_sampling"):
        ft.FinetuneOptions(out=tmp_path, site_sampling="uniform")


def test_the_presence_threshold_fitted_alone_keeps_the_parents_unless_another_scores_better() -> None:
    from pneumoviewer.model.postprocess import InferenceSettings
    from pneumoviewer.training.tuning import fit_presence_threshold

    lesion = np.zeros((8, 8), dtype=bool)
    lesion[2:6, 2:6] = True
    masks = np.stack([lesion, np.zeros_like(lesion), np.zeros_like(lesion)])
    maps = np.stack([lesion * 0.97, lesion * 0.93, lesion * 0.90]).astype(np.float32)  # one true, two false calls
    parent = InferenceSettings(presence_threshold=0.85, presence_min_pixels=1, mask_threshold=0.5,
                               presence_head_weight=0.0)
    threshold, score = fit_presence_threshold(masks, maps, np.zeros(3), parent)
    assert (threshold, score) == (0.97, 1.0)  # 0.935 … 0.97 call the true lesion alone: ties go to the highest
    alone = np.stack([lesion * 0.97, np.zeros_like(maps[0]), np.zeros_like(maps[0])])
    assert fit_presence_threshold(masks, alone, np.zeros(3), parent) == (0.85, 1.0)  # the parent's is among the best


def test_the_developers_data_is_found_beside_the_checkout() -> None:
    developers = ft.developer_data()
    assert developers is not None, "../shared/data beside the checkout (rehearsal and the forgetting check)"
    card = json.loads(default_model_path().with_suffix(".json").read_text())
    held_out = card["training"]["split"]["validation_ids"]  # the bundled model's own held-out films
    assert len(developers.validation) == len(held_out) and len(developers.training) > 1000
    assert not {i.image_id for i in developers.validation} & {i.image_id for i in developers.training}


def _case(image_id: str, status: ReviewStatus, mask: np.ndarray | None, shape: tuple[int, int] = (64, 64)) -> Case:
    case = Case(image_id, image_id, shape, path=Path(f"/data/{image_id}.dcm"))
    case.status, case.mask = status, mask
    return case


def test_inconsistent_cases_are_refused_with_a_reason_and_the_rest_kept() -> None:
    lesion = np.zeros((64, 64), dtype=bool)
    lesion[10:20, 10:20] = True
    accepted_ai = _case("accepted-ai", ReviewStatus.ACCEPTED, None)
    accepted_ai.set_ai_result(0.9, lesion, True)
    gathered = reviewed_cases([
        _case("corrected-empty", ReviewStatus.CORRECTED, np.zeros((64, 64), dtype=bool)),
        _case("rejected-with-mask", ReviewStatus.REJECTED, lesion),
        _case("wrong-size", ReviewStatus.CORRECTED, np.ones((32, 64), dtype=bool)),
        _case("corrected", ReviewStatus.CORRECTED, lesion),
        _case("rejected", ReviewStatus.REJECTED, None),
        _case("unreviewed", ReviewStatus.UNREVIEWED, lesion),
        accepted_ai,
    ])
    reasons = {refusal.image_id: refusal.reason for refusal in gathered.refused}
    assert "mask is empty" in reasons["corrected-empty"]
    assert "rejected" in reasons["rejected-with-mask"] and "100 pixels" in reasons["rejected-with-mask"]
    assert "64×32 pixels but the image is 64×64" in reasons["wrong-size"]
    kept = {case.image_id: case for case in gathered.cases}
    assert set(kept) == {"corrected", "rejected", "accepted-ai"}
    assert kept["accepted-ai"].positive and kept["corrected"].positive and not kept["rejected"].positive


def test_csv_cases_without_an_image_or_with_a_mask_too_large_are_refused(
    reviewed_csv: Path, siim_dir: Path, tmp_path: Path
) -> None:
    outside = read_annotation_rows(siim_dir / "train-rle.csv")[-1][0]  # not among the 40
    labels = tmp_path / "labels.csv"
    labels.write_text(reviewed_csv.read_text() + "1.2.3.not-here, -1\n" + f"{outside}, 1048570 100\n")
    gathered = ft.cases_from_csv(labels, siim_dir)
    reasons = {refusal.image_id: refusal.reason for refusal in gathered.refused}
    assert "no image file" in reasons["1.2.3.not-here"]
    assert "does not fit its 1024×1024 image" in reasons[outside]
    assert len(gathered.cases) == 40 and gathered.positives == 12


def test_readiness_says_what_is_missing() -> None:
    assert readiness_problem(30, 5) is None
    assert readiness_problem(12, 5) == "Needs 18 more reviewed cases (12 of 30)."
    assert "4 more with a pneumothorax marked (1 of 5)" in (readiness_problem(40, 1) or "")


def test_snapshot_round_trip(tmp_path: Path) -> None:
    lesion = np.zeros((64, 64), dtype=bool)
    lesion[3:9, 5:7] = True
    gathered = reviewed_cases([_case("a", ReviewStatus.CORRECTED, lesion),
                               _case("b", ReviewStatus.CORRECTED, np.zeros((64, 64), dtype=bool))])
    write_snapshot(gathered, tmp_path / "cases.json")
    assert read_snapshot(tmp_path / "cases.json") == gathered


def test_autosaved_reviews_are_read_without_writing(siim_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "studies"
    folder.mkdir()
    sources = sorted(siim_dir.rglob("*.dcm"))[:3]
    for source in sources:
        (folder / source.name).write_bytes(source.read_bytes())
    data_dir = tmp_path / "data"
    session = ReviewSession.from_metadata(folder, [read_header(path) for path in sorted(folder.iterdir())], data_dir)
    first, second, third = session.cases
    first.set_status(ReviewStatus.REJECTED)
    second.editor.fill(100, 100)  # an edit: corrected, the whole film painted
    session.close()
    stamps = {path: path.stat().st_mtime_ns for path in data_dir.rglob("*") if path.is_file()}
    gathered = autosaved_cases(folder, data_dir)
    assert {case.image_id: case.status for case in gathered.cases} == {
        first.image_id: "rejected", second.image_id: "corrected"}
    assert {path: path.stat().st_mtime_ns for path in data_dir.rglob("*") if path.is_file()} == stamps


def test_the_held_out_slice_is_never_trained_on(finetuned: tuple[ft.FinetuneResult, list[set[str]]]) -> None:
    result, sources = finetuned
    held_out = set(result.held_out)
    assert len(held_out) == 10 and len(result.trained_on) == 30
    assert sources and all(source == set(result.trained_on) for source in sources)
    assert not held_out & set(result.trained_on)
    card = json.loads(result.model.with_suffix(".json").read_text())
    assert set(card["training"]["held_out_ids"]) == held_out


def test_the_card_holds_image_ids_only(finetuned: tuple[ft.FinetuneResult, list[set[str]]], siim_dir: Path) -> None:
    result, _ = finetuned
    text = result.model.with_suffix(".json").read_text()
    card = json.loads(text)
    assert set(card["training"]["trained_on_ids"]) == set(result.trained_on)
    assert str(siim_dir) not in text and "siim" not in text and ".dcm" not in text
    names = {str(read_header(path).path.stem) for path in list(siim_dir.rglob("*.dcm"))[:1]}
    from pydicom import dcmread

    patient = str(dcmread(next(siim_dir.rglob("*.dcm")), stop_before_pixels=True).PatientName)
    assert patient and patient not in text and names
    assert card["training"]["gate"]["decision"] in {d.value for d in Decision}


def _figures(score: float, auc: float, cases: int = 100, positives: int = 25) -> SliceFigures:
    return SliceFigures(cases, positives, score, auc, 0.9, 0.5, 0.5)


def _images(count: int = 100) -> ImageResults:
    truth = np.arange(count) % 4 == 0
    return ImageResults(np.full(count, 0.8), np.linspace(0, 1, count), truth)


@pytest.mark.parametrize(("score", "auc", "decision"), [
    (0.830, 0.86, Decision.BETTER),  # the score rose past its margin, the AUC held
    (0.822, 0.87, Decision.BETTER),  # the AUC rose past its margin
    (0.823, 0.855, Decision.NOT_WORSE),  # both within their margins
    (0.810, 0.90, Decision.WORSE),  # the score fell, whatever the AUC
    (0.840, 0.84, Decision.WORSE),  # the AUC fell, whatever the score
])
def test_gate_decisions(score: float, auc: float, decision: Decision) -> None:
    report = decide(_figures(0.820, 0.855), _figures(score, auc), _images(), _images())
    assert report.decision is decision
    assert report.promotable is (decision is not Decision.WORSE)
    assert report.warning is None


def test_gate_warns_when_the_slice_is_too_small() -> None:
    report = decide(_figures(0.8, 0.8, 20, 4), _figures(0.8, 0.8, 20, 4), _images(20), _images(20))
    assert report.warning is not None and "too small to tell: 20 cases, 4 with a pneumothorax" in report.warning


def test_registry_promotes_switches_rolls_back_and_never_writes_the_bundled_model(
    finetuned: tuple[ft.FinetuneResult, list[set[str]]], tmp_path: Path
) -> None:
    result, _ = finetuned
    bundled_bytes = default_model_path().read_bytes(), default_model_path().with_suffix(".json").read_bytes()
    registry = ModelRegistry(tmp_path)
    assert [v.name for v in registry.versions()] == [BUNDLED] and registry.active().bundled
    first = registry.promote(result.model)
    second = registry.promote(result.model, forced=True)
    assert (first.name, second.name) == ("site-001", "site-002")
    assert registry.active().name == "site-002" and "promoted against the gate" in registry.active().label
    assert first.weights.parent.parent == tmp_path / "models"
    assert registry.roll_back().name == "site-001"
    assert registry.roll_back().name == BUNDLED
    assert registry.switch("site-002").name == "site-002"
    with pytest.raises(RegistryError):
        registry.switch("site-009")
    assert (default_model_path().read_bytes(), default_model_path().with_suffix(".json").read_bytes()) == bundled_bytes
    assert registry.name_of(second.weights) == "site-002"


def test_cli_exit_codes(reviewed_csv: Path, siim_dir: Path, random_checkpoint: Path, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    common = ["finetune", "--labels", str(reviewed_csv), "--images", str(siim_dir), "--from", str(random_checkpoint),
              "--minutes", "0.03", "--no-rehearsal", "--no-forgetting", "--cache-dir", str(tmp_path / "cache"),
              "--threads", "1"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    printed = capsys.readouterr().out
    assert "challenge score" in printed and "Decision: the candidate is" in printed
    assert (tmp_path / "a" / "model.safetensors").is_file() and (tmp_path / "a" / "model.json").is_file()
    decision = json.loads((tmp_path / "a" / "model.json").read_text())["training"]["gate"]["decision"]
    film = next(siim_dir.rglob("*.dcm"))
    assert main(["predict", "--model", str(tmp_path / "a" / "model.safetensors"), "--out", str(tmp_path / "p.csv"),
                 str(film)]) == 0
    assert film.stem in (tmp_path / "p.csv").read_text()
    status = main([*common, "--out", str(tmp_path / "b"), "--require-better"])
    assert status == (0 if decision == "better" else 3)
    assert main(["finetune", "--out", str(tmp_path / "c")]) == 2
    assert "give --labels and --images" in capsys.readouterr().err


def test_too_few_cases_to_hold_out_is_refused_naming_what_is_missing(siim_dir: Path, random_checkpoint: Path,
                                                                      tmp_path: Path) -> None:
    only_negatives = ReviewedCases(tuple(case for case in ft.cases_from_csv(
        Path(siim_dir) / "train-rle.csv", siim_dir).cases if not case.positive)[:8])
    options = ft.FinetuneOptions(out=tmp_path, start_model=random_checkpoint, minutes=0.01, rehearsal_images=0,
                                 forgetting=False, threads=1)
    with pytest.raises(ft.data.TrainingDataError, match="with and without a pneumothorax"):
        ft.finetune(only_negatives, options)


def test_cli_fit_fraction_and_site_sampling_reach_the_recipe_and_bad_values_are_named(
    reviewed_csv: Path, siim_dir: Path, random_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["finetune", "--labels", str(reviewed_csv), "--images", str(siim_dir), "--from", str(random_checkpoint),
              "--minutes", "0.03", "--no-rehearsal", "--no-forgetting", "--cache-dir", str(tmp_path / "cache"),
              "--threads", "1"]
    assert main([*common, "--out", str(tmp_path / "a"), "--fit-fraction", "0.34", "--site-sampling", "prevalence"]) == 0
    card = json.loads((tmp_path / "a" / "model.json").read_text())
    assert card["training"]["recipe"]["fit_fraction"] == 0.34
    assert card["training"]["recipe"]["site_sampling"] == "prevalence"
    assert len(card["training"]["fitted_on_ids"]) == 10  # a third of the 30 training cases held apart
    capsys.readouterr()

    assert main([*common, "--out", str(tmp_path / "b"), "--fit-fraction", "1"]) == 2
    assert "--fit-fraction must be at least 0 and below 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main([*common, "--out", str(tmp_path / "b"), "--site-sampling", "uniform"])
    assert refused.value.code == 2
    error = capsys.readouterr().err
    assert "--site-sampling: invalid choice: 'uniform'" in error and "'balanced', 'prevalence'" in error
    assert not (tmp_path / "b").exists()  # refused before anything was written
