"""The review controller with no window: its caches, the follow-the-top policy and model switching,
on real SIIM DICOMs with a real (small, random-weights) model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import ui_driver  # tests/ui_driver.py
from ui_driver import WAIT_MS, predictor_scoring_last_highest

from pneumoviewer.review.case import ReviewStatus
from pneumoviewer.ui.controller import IMAGE_CACHE_SIZE
from pneumoviewer.ui.lru_cache import LruCache

make_controller = ui_driver.make_controller  # fixtures
study_folder = ui_driver.study_folder


def open_folder(qtbot, controller, folder: Path) -> None:
    with qtbot.waitSignal(controller.sigSessionOpened, timeout=WAIT_MS):
        controller.open_paths([folder])


def all_scored(controller) -> bool:
    rows = controller.worklist_model.rows()
    return bool(rows) and all(row.score is not None for row in rows)


def test_the_lru_cache_drops_the_entry_used_longest_ago() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert list(cache) == ["a", "c"] and "b" not in cache and cache.get("b") is None
    cache.clear()
    assert len(cache) == 0


@pytest.fixture
def large_folder(tmp_path: Path, siim_dir: Path) -> Path:
    folder = tmp_path / "studies"
    folder.mkdir()
    for path in sorted((siim_dir / "dicom-images").rglob("*.dcm"))[:IMAGE_CACHE_SIZE + 3]:
        (folder / path.name).symlink_to(path)
    return folder


def test_stepping_keeps_a_few_decoded_images_prefetches_the_next_and_shows_a_cached_one_at_once(
    qtbot, make_controller, large_folder: Path
) -> None:
    controller = make_controller()
    shown: list[str] = []
    controller.sigPixels.connect(lambda image_id, image: shown.append(image_id))
    controller.set_heatmaps_wanted(True)
    open_folder(qtbot, controller, large_folder)
    qtbot.waitUntil(lambda: all_scored(controller), timeout=WAIT_MS)
    qtbot.wait(2 * controller.worklist_model.RESORT_DELAY_MS)  # the order is final: rows stay put below
    proxy = controller.worklist_model
    viewed = [proxy.image_id_at(row) for row in range(proxy.rowCount())]
    for row, image_id in enumerate(viewed):
        controller.show_case(image_id)
        qtbot.waitUntil(lambda: bool(shown) and shown[-1] == controller.current_id, timeout=WAIT_MS)
        if row + 1 < len(viewed):  # the next case is decoded while this one is read
            qtbot.waitUntil(lambda row=row: viewed[row + 1] in controller.images, timeout=WAIT_MS)
        assert len(controller.images) <= IMAGE_CACHE_SIZE
        qtbot.waitUntil(lambda: controller.current_id in controller.heatmaps, timeout=WAIT_MS)
    assert len(controller.images) == IMAGE_CACHE_SIZE  # full, never more
    assert viewed[0] not in controller.images and viewed[-1] in controller.images  # the oldest went first

    before = len(shown)
    controller.step_case(-1)  # a case still in the cache: its pixels go out before step_case returns
    assert shown[before:] == [controller.current_id]
    assert controller.current_id == viewed[-2]


def test_until_the_reader_acts_the_case_on_screen_follows_the_top(
    qtbot, make_controller, study_folder: Path, random_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pneumoviewer.io import images

    scored, load_and_remember, likeliest = predictor_scoring_last_highest(random_checkpoint, study_folder)
    monkeypatch.setattr(images, "load_radiograph", load_and_remember)  # the AI thread's loads name the study
    controller = make_controller(lambda: scored)
    current: list[object] = []
    controller.sigCurrentCase.connect(lambda case: current.append(case and case.image_id))
    open_folder(qtbot, controller, study_folder)
    first = controller.current_id
    assert first is not None and first != likeliest and controller.follow_top  # folder order: no scores yet
    qtbot.waitUntil(lambda: all_scored(controller), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: controller.current_id == likeliest, timeout=WAIT_MS)  # nobody pressed a thing
    assert controller.worklist_model.image_id_at(0) == likeliest and current[-1] == likeliest

    controller.step_case(+1)  # the reader moves on: from now on the case stays where the reader put it
    chosen = controller.current_id
    assert chosen != likeliest and not controller.follow_top
    controller.predict_all()
    qtbot.waitUntil(lambda: not controller.model_queue.running, timeout=WAIT_MS)
    qtbot.wait(2 * controller.worklist_model.RESORT_DELAY_MS)
    assert controller.current_id == chosen

    controller.show_case(chosen)  # the views' echo of a selection the controller made changes nothing
    assert controller.current_id == chosen


def test_a_model_chosen_after_none_could_load_predicts_every_case_and_edits_stay(
    qtbot, make_controller, study_folder: Path, random_checkpoint: Path
) -> None:
    def missing_model():
        raise RuntimeError("pneumoviewer/resources/models/default.safetensors: the model file is missing")

    controller = make_controller(missing_model)
    states: list[tuple[str, str]] = []
    controller.sigAiState.connect(lambda text, problem: states.append((text, problem)))
    open_folder(qtbot, controller, study_folder)
    qtbot.waitUntil(lambda: controller.model_queue.model_error is not None, timeout=WAIT_MS)
    assert states[-1][0] == "AI unavailable" and "model file is missing" in states[-1][1]
    qtbot.waitUntil(lambda: all(row.error for row in controller.worklist_model.rows()))
    case = controller.session.case(controller.current_id)
    case.editor.begin_stroke()
    case.editor.paint([300, 300], [300, 400], 8)
    case.editor.end_stroke()
    drawn = case.mask.copy()

    controller.use_model(random_checkpoint)
    assert all(row.error is None for row in controller.worklist_model.rows())
    qtbot.waitUntil(lambda: all_scored(controller), timeout=WAIT_MS)
    assert states[-1] == (states[-1][0], "") and states[-1][0].startswith(f"AI: {random_checkpoint.name}, loaded")
    assert controller.model_checkpoint == random_checkpoint
    assert np.array_equal(case.mask, drawn) and case.status is ReviewStatus.CORRECTED
    assert case.editor.can_undo  # the undo history survived the model change


def test_switching_back_to_a_model_puts_its_stored_results_back_without_the_network(
    qtbot, make_controller, study_folder: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    import torch

    from pneumoviewer.model.checkpoint import load_checkpoint, save_checkpoint

    network, card = load_checkpoint(random_checkpoint)
    torch.manual_seed(1)
    for parameter in network.parameters():  # the same architecture and card, other weights: other scores
        parameter.data.add_(torch.randn_like(parameter) * 0.5)
    (tmp_path / "other-model").mkdir()
    other, _ = save_checkpoint(tmp_path / "other-model" / "other", network, card, half=False)

    controller = make_controller(model_checkpoint=random_checkpoint)
    open_folder(qtbot, controller, study_folder)
    qtbot.waitUntil(lambda: all_scored(controller), timeout=WAIT_MS)
    first_scores = {row.image_id: row.score for row in controller.worklist_model.rows()}

    def scores() -> dict[str, float | None]:
        return {row.image_id: row.score for row in controller.worklist_model.rows()}

    controller.use_model(other)
    qtbot.waitUntil(lambda: all(scores()[key] != first_scores[key] for key in first_scores), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not controller.model_queue.running, timeout=WAIT_MS)

    predicted: list[str] = []
    controller.model_queue.sigPredicted.connect(lambda image_id, _finding: predicted.append(image_id))
    controller.use_model(random_checkpoint)  # a rollback: its results of a moment ago are still valid
    qtbot.waitUntil(lambda: scores() == first_scores, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not controller.pool.running(), timeout=WAIT_MS)  # the restore, and any AI run
    assert predicted == [], "the stored results were put back, not predicted again"
    assert controller.ai.restored_under is not None


def test_a_chosen_model_that_is_refused_gives_way_to_the_bundled_one_with_a_warning(
    qtbot, make_controller, study_folder: Path, random_checkpoint: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pneumoviewer import paths

    monkeypatch.setattr(paths, "default_model_path", lambda: random_checkpoint)  # a small bundled model
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(random_checkpoint.read_bytes()[:1000])
    (tmp_path / "truncated.json").write_bytes(random_checkpoint.with_suffix(".json").read_bytes())
    controller = make_controller()
    warnings: list[tuple[str, str]] = []
    states: list[tuple[str, str]] = []
    controller.sigWarning.connect(lambda title, text: warnings.append((title, text)))
    controller.sigAiState.connect(lambda text, problem: states.append((text, problem)))
    open_folder(qtbot, controller, study_folder)
    with qtbot.waitSignal(controller.model_queue.sigPredicted, timeout=WAIT_MS):  # the AI goes on, bundled
        controller.use_model(truncated)
    qtbot.waitUntil(lambda: bool(warnings), timeout=WAIT_MS)
    assert warnings[0][0] == "Model not used" and str(truncated) in warnings[0][1]
    text, problem = states[-1]
    assert text.startswith(f"AI: {random_checkpoint.name}") and "the chosen model was not used" in text
    assert problem.startswith(f"{truncated}: ")
    assert controller.model_queue.model_error is None
    qtbot.waitUntil(lambda: all_scored(controller), timeout=WAIT_MS)
