"""AI results survive a restart: stored per file (identity + content) and model, never trusted when off."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from pneumoviewer.io.folder_scan import scan_folder
from pneumoviewer.review.autosave import SessionSaveError
from pneumoviewer.review.case import ReviewStatus
from pneumoviewer.review.prediction_store import CONTENT_BLOCK, KEPT_MODELS, StoredPrediction
from pneumoviewer.review.session import ReviewSession, WorklistOrder

MODEL = "a" * 32
OTHER_MODEL = "b" * 32


class FakePrediction:
    """What a `Prediction` offers the session: score, final mask and the model's call."""

    def __init__(self, score: float, mask: np.ndarray, positive: bool) -> None:
        self.score, self.mask, self.positive = score, mask, positive


@pytest.fixture
def study(tmp_path: Path, siim_dir: Path) -> Path:
    """Four real SIIM DICOMs (1024x1024), copied so the tests may touch and change them."""
    folder = tmp_path / "study"
    folder.mkdir()
    for source in sorted((siim_dir / "dicom-images").rglob("*.dcm"))[:4]:
        shutil.copy2(source, folder / source.name)
    return folder


def open_study(folder: Path, data: Path) -> ReviewSession:
    return ReviewSession.from_metadata(folder, scan_folder(folder).images, data)


def lesion(shape: tuple[int, int], row: int, col: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[row : row + 80, col : col + 50] = True
    mask[row + 100 : row + 120, col : col + 5] = True  # a second region
    return mask


def predict_all(session: ReviewSession, model_key: str | None = MODEL) -> dict[str, FakePrediction]:
    """Scores 0.9, 0.7, ... ; every other case a lesion. The 0.7 one is a call made on the score alone."""
    predictions = {}
    for number, case in enumerate(session.cases):
        mask = lesion(case.shape, 200 + 50 * number, 300) if number % 2 == 0 else np.zeros(case.shape, dtype=bool)
        predictions[case.image_id] = FakePrediction(0.9 - 0.2 * number, mask, positive=number <= 1)
        session.apply_prediction(case.image_id, predictions[case.image_id], model_key)
    return predictions


def scored_study(study: Path, data: Path) -> dict[str, FakePrediction]:
    session = open_study(study, data)
    predictions = predict_all(session)
    session.close()
    return predictions


def journal_path(study: Path, data: Path) -> Path:
    return open_study(study, data).store.predictions.path


def test_reopening_shows_every_stored_result_and_keeps_the_reviewers_work_apart(study: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    session = open_study(study, data)
    predictions = predict_all(session)
    first, second = session.cases[0], session.cases[1]
    first.start_from_ai()
    first.editor.begin_stroke()
    first.editor.paint([10, 30], [10, 20], 4)
    first.editor.end_stroke()
    edited = first.mask.copy()
    session.set_status(second.image_id, ReviewStatus.REJECTED)
    sorted_before = [case.image_id for case in session.worklist(order=WorklistOrder.AI_SCORE)]
    session.close()

    reopened = open_study(study, data)
    assert all(not case.has_ai_result for case in reopened.cases)
    assert reopened.restore_predictions(MODEL) == set(predictions)
    for case in reopened.cases:
        stored = predictions[case.image_id]
        assert case.ai_score == pytest.approx(stored.score) and case.ai_positive is stored.positive
        assert np.array_equal(case.ai_mask, stored.mask)
    assert [case.image_id for case in reopened.worklist(order=WorklistOrder.AI_SCORE)] == sorted_before
    # The reviewer's statuses and edited masks come from their own files, untouched by the AI results.
    assert reopened.case(first.image_id).status is ReviewStatus.CORRECTED
    assert np.array_equal(reopened.case(first.image_id).mask, edited)
    assert reopened.case(second.image_id).status is ReviewStatus.REJECTED
    assert reopened.restore_problems == []


def test_a_touched_or_changed_file_is_predicted_again(study: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    scored_study(study, data)
    touched, changed, *unchanged = sorted(study.iterdir())
    os.utime(touched)  # same bytes, new mtime: identity differs
    before = changed.stat()
    content = bytearray(changed.read_bytes())
    assert len(content) > 3 * CONTENT_BLOCK  # the digest samples this file: its middle block is read
    content[len(content) // 2] ^= 0x01  # a pixel-data byte, in a copy that keeps size and mtime
    changed.write_bytes(bytes(content))
    os.utime(changed, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert changed.stat().st_mtime_ns == before.st_mtime_ns and changed.stat().st_size == before.st_size

    reopened = open_study(study, data)
    restored = reopened.restore_predictions(MODEL)
    ids_by_file = {case.path.name: case.image_id for case in reopened.cases}
    assert restored == {ids_by_file[path.name] for path in unchanged}
    assert not reopened.case(ids_by_file[touched.name]).has_ai_result
    assert not reopened.case(ids_by_file[changed.name]).has_ai_result
    # Their stale entries are dropped: even the original file back would be predicted again.
    kept = [json.loads(line)["image"] for line in journal_path(study, data).read_text().splitlines()]
    assert sorted(kept) == sorted(restored)


def test_another_models_key_restores_nothing_and_keeps_the_results_for_that_model(study: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    predictions = scored_study(study, data)
    reopened = open_study(study, data)
    assert reopened.restore_predictions(OTHER_MODEL) == set()
    assert all(not case.has_ai_result for case in reopened.cases)
    assert open_study(study, data).restore_predictions(MODEL) == set(predictions)


def test_each_models_results_are_kept_for_when_it_is_back_and_unkeyed_results_are_not_stored(
    study: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = scored_study(study, data)
    session = open_study(study, data)
    predict_all(session, OTHER_MODEL)
    predict_all(session, OTHER_MODEL)  # predicted again: the newer line supersedes the older
    predict_all(session, model_key=None)  # a result with no model key is shown, not stored
    session.close()
    reopened = open_study(study, data)
    assert len(reopened.restore_predictions(OTHER_MODEL)) == 4
    rolled_back = open_study(study, data)  # back to the first model: its results need no network
    assert rolled_back.restore_predictions(MODEL) == set(first)
    assert all(case.ai_score == pytest.approx(first[case.image_id].score) for case in rolled_back.cases)
    lines = journal_path(study, data).read_text().splitlines()
    assert len(lines) == 8  # 4 images x 2 models: the superseded lines were compacted away


def test_only_the_models_stored_last_keep_their_results(study: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    models = [f"{number:032x}" for number in range(KEPT_MODELS + 1)]
    session = open_study(study, data)
    for model in models:
        predict_all(session, model)
    session.close()
    assert open_study(study, data).restore_predictions(models[0]) == set()  # the oldest was dropped
    assert all(len(open_study(study, data).restore_predictions(model)) == 4 for model in models[1:])
    assert len(journal_path(study, data).read_text().splitlines()) == 4 * KEPT_MODELS


def test_a_corrupt_store_is_dropped_without_a_crash_and_the_good_entries_still_restore(
    study: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    predictions = scored_study(study, data)
    journal = journal_path(study, data)
    lines = journal.read_text().splitlines(keepends=True)
    victim = json.loads(lines[0])["image"]
    wrong_shape = json.loads(lines[1])
    wrong_shape["shape"] = "1024x1024"
    invalid_rle = StoredPrediction.from_line(lines[2])
    undecodable = StoredPrediction(invalid_rle.image_id, invalid_rle.file, MODEL, 0.5, True, (1024, 1024),
                                   "5 10 -20 3")  # a checksummed entry whose RLE overlaps itself
    journal.write_text(
        "not json at all\n" + lines[0][: len(lines[0]) // 2] + "\n" + json.dumps(wrong_shape) + "\n"
        + "[1, 2, 3]\n" + "".join(lines) + undecodable.to_line() + '{"check": 5}\n' + lines[0][:30]
    )
    reopened = open_study(study, data)
    restored = reopened.restore_predictions(MODEL)
    assert restored == set(predictions) - {invalid_rle.image_id}  # the last line per image wins; then dropped
    assert not reopened.case(invalid_rle.image_id).has_ai_result
    assert victim in restored  # its good line came later than its torn copy
    [problem] = reopened.restore_problems
    assert problem.path == journal and "7 stored AI results are damaged" in problem.reason
    assert "not valid RLE" in problem.reason or "line 1" in problem.reason
    # The journal is rewritten without the damage: the next reopen is clean.
    again = open_study(study, data)
    assert again.restore_predictions(MODEL) == restored and again.restore_problems == []


def test_a_bit_flipped_mask_entry_is_not_trusted(study: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    predictions = scored_study(study, data)
    journal = journal_path(study, data)
    lines = journal.read_text().splitlines(keepends=True)
    entry = json.loads(lines[0])
    assert entry["mask"] != "-1"
    # One bit of one digit of the RLE: the text still decodes to a mask (a wrong one).
    at = lines[0].index('"mask":"') + len('"mask":"') + 1
    flipped = lines[0][:at] + chr(ord(lines[0][at]) ^ 0x01) + lines[0][at + 1 :]
    assert flipped != lines[0] and json.loads(flipped)["mask"][1].isdigit()
    journal.write_text(flipped + "".join(lines[1:]))
    reopened = open_study(study, data)
    assert reopened.restore_predictions(MODEL) == set(predictions) - {entry["image"]}
    assert not reopened.case(entry["image"]).has_ai_result
    assert "checksum" in reopened.restore_problems[0].reason


def test_an_unreadable_store_is_reported_not_raised(study: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    session = open_study(study, data)
    session.store.predictions.path.mkdir(parents=True)  # something that cannot be read as a file
    assert session.restore_predictions(MODEL) == set()
    assert session.restore_problems[0].path == session.store.predictions.path


def test_a_full_disk_while_storing_results_is_said_once_and_the_results_are_still_shown(
    study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = open_study(study, tmp_path / "data")
    failures: list[SessionSaveError] = []
    session.save_failed.connect(failures.append)
    journal_type = type(session.store.predictions)

    def disk_full(self: object, entry: StoredPrediction) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(journal_type, "append", disk_full)
    predictions = predict_all(session)
    assert len(failures) == 1 and "disk is full" in failures[0].reason
    assert failures[0].path == session.store.predictions.path
    assert all(case.ai_score == pytest.approx(predictions[case.image_id].score) for case in session.cases)
    monkeypatch.undo()
    predict_all(session)  # space again: stored again, and a later failure would be said again
    assert len(session.store.predictions.read().latest) == 4


def test_a_result_of_this_session_is_never_replaced_by_an_older_stored_one(study: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    predictions = scored_study(study, data)
    reopened = open_study(study, data)
    fresh = reopened.cases[0]
    reopened.apply_prediction(fresh.image_id, FakePrediction(0.01, np.zeros(fresh.shape, dtype=bool), False), MODEL)
    assert reopened.restore_predictions(MODEL) == set(predictions) - {fresh.image_id}
    assert fresh.ai_score == pytest.approx(0.01) and fresh.ai_positive is False
    later = open_study(study, data)
    assert later.restore_predictions(MODEL) == set(predictions)
    assert later.case(fresh.image_id).ai_score == pytest.approx(0.01)  # the fresh result is the stored one now
