"""Cases, status rules, the worklist, AI results, annotation import and crash-safe autosave."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from pneumoviewer.errors import FileProblem
from pneumoviewer.io.annotations import AnnotationError
from pneumoviewer.io.dicom import DicomError
from pneumoviewer.io.folder_scan import scan_folder
from pneumoviewer.io.rle import decode
from pneumoviewer.paths import demo_dir
from pneumoviewer.review.autosave import SessionSaveError, SessionStore
from pneumoviewer.review.case import Case, CaseChange, ReviewStatus, lesion_stats
from pneumoviewer.review.opening import open_studies
from pneumoviewer.review.session import ReviewSession, WorklistOrder, session_store_for

SHAPE = (256, 256)


def make_cases(count: int = 4) -> list[Case]:
    return [Case(f"1.2.3.{n}", f"Case {n:04d}", SHAPE, pixel_spacing_mm=(0.2, 0.25)) for n in range(1, count + 1)]


def open_session(folder: Path, data_dir: Path, count: int = 4) -> ReviewSession:
    return ReviewSession(folder, make_cases(count), data_dir=data_dir)


def draw(case: Case, row: float, col: float, radius: float = 6, value: bool = True) -> None:
    case.editor.begin_stroke()
    case.editor.paint([row, row + 20], [col, col + 10], radius, value)
    case.editor.end_stroke()


class FakePrediction:
    def __init__(self, score: float, mask: np.ndarray) -> None:
        self.score, self.mask, self.positive = score, mask, bool(mask.any())


def blob(center: tuple[int, int], radius: int) -> np.ndarray:
    rows, cols = np.ogrid[: SHAPE[0], : SHAPE[1]]
    return (rows - center[0]) ** 2 + (cols - center[1]) ** 2 <= radius**2


# -- status rules -------------------------------------------------------------------------------


def test_a_manual_edit_marks_an_unreviewed_or_accepted_case_corrected() -> None:
    unreviewed, accepted, rejected, corrected = make_cases(4)
    accepted.set_status(ReviewStatus.ACCEPTED)
    rejected.set_status(ReviewStatus.REJECTED)
    corrected.set_status(ReviewStatus.CORRECTED)
    for case in (unreviewed, accepted, corrected):
        draw(case, 50, 50)
        assert case.status is ReviewStatus.CORRECTED
    rejected.editor.fill(0, 0)
    assert rejected.status is ReviewStatus.CORRECTED  # a lesion drawn on a rejected case contradicts it


def test_erasing_on_a_rejected_case_keeps_it_rejected_and_undo_never_changes_status() -> None:
    case = make_cases(1)[0]
    case.set_status(ReviewStatus.REJECTED)
    case.editor.clear()
    assert case.status is ReviewStatus.REJECTED
    draw(case, 50, 50)
    case.editor.undo()
    assert case.status is ReviewStatus.CORRECTED and not case.mask.any()


def test_accepting_adopts_the_ai_mask_as_one_undo_step_and_starting_from_ai_is_not_a_correction() -> None:
    first, second = make_cases(2)
    ai_mask = blob((100, 100), 30)
    first.set_ai_result(0.9, ai_mask, True)
    first.set_status(ReviewStatus.ACCEPTED)
    assert np.array_equal(first.mask, ai_mask) and first.status is ReviewStatus.ACCEPTED
    assert first.editor.undo_depth == 1
    second.set_ai_result(0.8, ai_mask, True)
    second.start_from_ai()
    assert second.status is ReviewStatus.UNREVIEWED and np.array_equal(second.mask, ai_mask)


def test_a_rejected_case_exports_empty_whatever_its_mask() -> None:
    case = make_cases(1)[0]
    draw(case, 50, 50)
    case.set_status(ReviewStatus.REJECTED)
    assert case.mask.any() and not case.export_mask().any()


def test_rerunning_the_ai_keeps_the_edited_mask_and_its_undo_history() -> None:
    case = make_cases(1)[0]
    case.set_ai_result(0.4, blob((60, 60), 10), True)
    draw(case, 150, 150)
    edited = case.mask.copy()
    case.set_ai_result(0.7, blob((200, 60), 20), True)
    assert np.array_equal(case.mask, edited) and case.ai_score == 0.7
    assert np.array_equal(case.ai_mask, blob((200, 60), 20))
    case.editor.undo()
    assert not case.mask.any()


def test_lesion_count_and_area_come_from_the_pixel_spacing() -> None:
    mask = blob((60, 60), 10) | blob((180, 180), 5)
    stats = lesion_stats(mask, (0.2, 0.25))
    assert stats.count == 2 and stats.area_px == int(mask.sum())
    assert stats.area_mm2 == pytest.approx(mask.sum() * 0.05)
    assert stats.area_cm2 == pytest.approx(mask.sum() * 0.0005)
    unknown = lesion_stats(mask, None)
    assert unknown.area_mm2 is None and unknown.area_cm2 is None and unknown.count == 2


# -- the session on real files --------------------------------------------------------------------


def test_a_session_from_real_dicom_headers_has_anonymised_ids_and_lesion_area_in_mm2(tmp_path: Path) -> None:
    folder = demo_dir()
    scan = scan_folder(folder)
    session = ReviewSession.from_metadata(folder, scan.images, data_dir=tmp_path)
    assert [case.display_id for case in session.cases] == [f"Case {n:04d}" for n in range(1, 7)]
    summary = session.import_annotations(folder / "ground-truth-rle.csv")
    assert (summary.positive, summary.negative, summary.unknown_ids) == (4, 2, ())
    case = session.case("1.2.276.0.7230010.3.1.4.8323329.5889.1517875192.229258")
    header = pydicom.dcmread(case.path, stop_before_pixels=True)
    row_mm, col_mm = (float(value) for value in header.PixelSpacing)
    assert str(header.PatientID) not in case.display_id and str(header.PatientName) not in case.display_id
    stats = case.lesions()
    assert stats.count >= 1 and stats.area_px > 1000
    assert stats.area_mm2 == pytest.approx(stats.area_px * row_mm * col_mm)
    assert 0.1 < row_mm < 0.2 and stats.area_cm2 == pytest.approx(stats.area_mm2 / 100)


def test_importing_the_challenge_csv_unites_rows_and_reports_unknown_ids(
    tmp_path: Path, siim_labels_csv: Path
) -> None:
    ids = ["1.2.276.0.7230010.3.1.4.8323329.307.1517875162.311533",  # 4 overlapping rows
           "1.2.276.0.7230010.3.1.4.8323329.301.1517875162.280319"]
    cases = [Case(image_id, f"Case {n}", (1024, 1024)) for n, image_id in enumerate(ids, 1)]
    session = ReviewSession(tmp_path / "study", cases, data_dir=tmp_path / "data")
    progress: list[tuple[int, int]] = []
    summary = session.import_annotations(siim_labels_csv, progress=lambda *step: progress.append(step))
    assert progress == [(1, 2), (2, 2)]
    assert summary.positive == 2 and len(summary.unknown_ids) == 1072
    rows = [line.split(",") for line in siim_labels_csv.read_text().splitlines()[1:]]
    expected = np.zeros((1024, 1024), dtype=bool)
    for image_id, encoded in rows:
        if image_id == ids[0]:
            expected |= decode(encoded.strip(), (1024, 1024))
    assert np.array_equal(session.case(ids[0]).mask, expected)
    assert session.case(ids[0]).status is ReviewStatus.UNREVIEWED


def test_the_worklist_puts_likely_pneumothorax_first_and_filters_by_status(tmp_path: Path) -> None:
    session = open_session(tmp_path / "study", tmp_path / "data", count=5)
    ids = [case.image_id for case in session.cases]
    for image_id, score in zip(ids, [0.2, None, 0.9, 0.5, None]):
        if score is not None:
            session.apply_prediction(image_id, FakePrediction(score, np.zeros(SHAPE, dtype=bool)))
    assert [case.image_id for case in session.worklist()] == [ids[2], ids[3], ids[0], ids[1], ids[4]]
    assert [case.image_id for case in session.worklist(order=WorklistOrder.FOLDER)] == ids
    session.set_status(ids[2], ReviewStatus.REJECTED)
    draw(session.case(ids[0]), 40, 40)
    assert [c.image_id for c in session.worklist([ReviewStatus.UNREVIEWED])] == [ids[3], ids[1], ids[4]]
    assert session.done_count == 2
    assert session.status_counts()[ReviewStatus.CORRECTED] == 1


# -- autosave and crash recovery --------------------------------------------------------------------


def test_everything_comes_back_after_a_crash(tmp_path: Path) -> None:
    folder, data = tmp_path / "study", tmp_path / "data"
    session = open_session(folder, data)
    first, second, third, _ = session.cases
    draw(first, 50, 50)
    first.editor.fill(200, 10)  # a second step on the same case
    third.set_status(ReviewStatus.REJECTED)
    second.set_ai_result(0.9, blob((80, 80), 25), True)
    second.set_status(ReviewStatus.ACCEPTED)
    expected = {case.image_id: (case.status, case.mask.copy() if case.mask is not None else None) for case in session}
    del session  # a crash: no close(), no save()

    restored = open_session(folder, data)
    assert not restored.restore_problems
    for case in restored:
        status, mask = expected[case.image_id]
        assert case.status is status
        assert (case.mask is None) if mask is None else np.array_equal(case.mask, mask)
    assert not restored.cases[0].editor.can_undo  # history is not kept across restarts
    assert restored.done_count == 3
    assert not open_session(tmp_path / "other study", data).done_count  # keyed by folder


def test_a_mask_erased_to_empty_stays_empty_after_restart(tmp_path: Path) -> None:
    folder, data = tmp_path / "study", tmp_path / "data"
    session = open_session(folder, data)
    draw(session.cases[0], 50, 50)
    session.cases[0].editor.clear()
    restored = open_session(folder, data)
    assert restored.cases[0].mask is None and restored.cases[0].status is ReviewStatus.CORRECTED


def test_a_full_disk_keeps_the_previous_save_and_retries_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, data = tmp_path / "study", tmp_path / "data"
    session = open_session(folder, data)
    case = session.cases[0]
    draw(case, 50, 50)
    saved_mask = session.store.mask_path(case.image_id).read_text()
    saved_index = session.store.index_path.read_text()
    failures: list[SessionSaveError] = []
    session.save_failed.connect(failures.append)

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    draw(case, 150, 150)
    session.set_status(case.image_id, ReviewStatus.ACCEPTED)
    assert failures and "disk is full" in str(failures[0]) and str(data) in str(failures[0])
    assert session.store.mask_path(case.image_id).read_text() == saved_mask
    assert session.store.index_path.read_text() == saved_index
    assert session.has_unsaved_changes
    with pytest.raises(SessionSaveError, match="disk is full"):
        session.save()
    assert sorted(p.name for p in session.store.directory.rglob("*")) == sorted(
        ["index.json", "masks", f"{case.image_id}.rle"]
    )  # no temp files left behind

    monkeypatch.undo()
    session.save()
    assert not session.has_unsaved_changes
    restored = open_session(folder, data)
    assert np.array_equal(restored.cases[0].mask, case.mask)
    assert restored.cases[0].status is ReviewStatus.ACCEPTED


def test_a_read_only_data_folder_raises_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SessionStore(tmp_path / "study", tmp_path / "data")
    store.save_statuses({"1.2.3.1": ReviewStatus.REJECTED})

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(os, "replace", read_only)
    monkeypatch.setattr(os, "rename", read_only)
    with pytest.raises(SessionSaveError, match="read-only") as caught:
        store.save_statuses({"1.2.3.1": ReviewStatus.ACCEPTED})
    assert caught.value.path == store.index_path
    assert isinstance(caught.value, FileProblem) and isinstance(caught.value, OSError)
    monkeypatch.undo()
    assert store.load_statuses() == {"1.2.3.1": ReviewStatus.REJECTED}


def test_a_corrupt_session_file_is_reported_and_the_folder_still_opens(tmp_path: Path) -> None:
    folder, data = tmp_path / "study", tmp_path / "data"
    session = open_session(folder, data)
    session.set_status(session.cases[0].image_id, ReviewStatus.REJECTED)
    draw(session.cases[1], 50, 50)
    session.store.index_path.write_text('{"statuses": ')
    restored = open_session(folder, data)
    assert len(restored.restore_problems) == 1
    assert restored.restore_problems[0].path == session.store.index_path
    assert isinstance(restored.restore_problems[0], FileProblem) and isinstance(restored.restore_problems[0], ValueError)
    assert restored.cases[1].mask is not None  # the masks still come back
    restored.set_status(restored.cases[2].image_id, ReviewStatus.ACCEPTED)  # a new index is written...
    kept = [path for path in session.store.directory.iterdir() if path.name.startswith("index.json.unreadable")]
    assert [path.read_text() for path in kept] == ['{"statuses": ']  # ...and the unreadable one is kept
    assert "kept as index.json.unreadable" in str(restored.restore_problems[0])


def test_subscribers_hear_about_every_change(tmp_path: Path) -> None:
    session = open_session(tmp_path / "study", tmp_path / "data")
    heard: list[tuple[str, CaseChange]] = []
    session.case_changed.connect(lambda case, change: heard.append((case.display_id, change)))
    draw(session.cases[0], 50, 50)
    session.apply_prediction(session.cases[1].image_id, FakePrediction(0.3, blob((10, 10), 3)))
    assert heard == [("Case 0001", CaseChange.STATUS), ("Case 0001", CaseChange.MASK), ("Case 0002", CaseChange.AI)]


def test_statuses_of_images_missing_this_time_are_kept_for_next_time(tmp_path: Path) -> None:
    folder, data = tmp_path / "study", tmp_path / "data"
    session = open_session(folder, data, count=4)
    session.set_status("1.2.3.4", ReviewStatus.REJECTED)
    fewer = open_session(folder, data, count=2)  # two files not there (e.g. a share not mounted)
    fewer.set_status("1.2.3.1", ReviewStatus.ACCEPTED)
    again = open_session(folder, data, count=4)
    assert again.case("1.2.3.4").status is ReviewStatus.REJECTED
    assert again.case("1.2.3.1").status is ReviewStatus.ACCEPTED


def test_importing_a_bad_csv_names_the_file_and_changes_nothing(tmp_path: Path) -> None:
    session = open_session(tmp_path / "study", tmp_path / "data")
    bad = tmp_path / "labels.csv"
    bad.write_text("ImageId, EncodedPixels\n1.2.3.1,10 5\n1.2.3.2,99999999 5\n")
    with pytest.raises(AnnotationError, match="labels.csv") as caught:
        session.import_annotations(bad)
    assert "1.2.3.2" in str(caught.value)
    assert all(case.mask is None for case in session)


def test_importing_onto_an_edited_case_is_one_undo_step(tmp_path: Path) -> None:
    session = open_session(tmp_path / "study", tmp_path / "data")
    case = session.cases[0]
    draw(case, 50, 50)
    drawn = case.mask.copy()
    labels = tmp_path / "labels.csv"
    labels.write_text("ImageId, EncodedPixels\n1.2.3.1,1000 20\n")
    session.import_annotations(labels)
    assert case.mask.sum() == 20
    case.editor.undo()
    assert np.array_equal(case.mask, drawn)


KILLED_SESSION = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from test_session import draw, open_session
from pneumoviewer.review.case import ReviewStatus
session = open_session(Path(sys.argv[1]), Path(sys.argv[2]))
draw(session.cases[0], 100, 100)
session.set_status(session.cases[1].image_id, ReviewStatus.REJECTED)
session.cases[2].editor.begin_stroke()
session.cases[2].editor.paint(30, 30, 5)  # a drag still in progress when the process dies
print("edited", flush=True)
sys.stdin.read()
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX")
def test_a_sigkilled_session_comes_back(tmp_path: Path) -> None:
    folder, data = tmp_path / "study", tmp_path / "data"
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_SESSION, str(folder), str(data), str(Path(__file__).parent)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout.readline().strip() == "edited"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    restored = open_session(folder, data)
    expected = make_cases(1)[0]
    draw(expected, 100, 100)
    assert np.array_equal(restored.cases[0].mask, expected.mask)
    assert restored.cases[0].status is ReviewStatus.CORRECTED
    assert restored.cases[1].status is ReviewStatus.REJECTED
    assert restored.cases[2].mask is None  # an unfinished stroke is not an edit yet


def test_a_copy_of_the_same_image_is_listed_not_reviewed_twice(tmp_path: Path) -> None:
    cases = make_cases(3)
    copy = Case(cases[1].image_id, "Case 0009", SHAPE, path=tmp_path / "copy.dcm")
    session = ReviewSession(tmp_path / "study", [*cases, copy], data_dir=tmp_path / "data")
    assert len(session) == 3 and session.duplicates == [copy]
    assert session.case(cases[1].image_id) is cases[1]


# -- where a folder's or a selection's session lives ------------------------------------------


def copy_siim(siim_dir: Path, folder: Path, count: int, skip: int = 0) -> list[Path]:
    folder.mkdir(parents=True)
    sources = sorted((siim_dir / "dicom-images").rglob("*.dcm"))[skip : skip + count]
    return [Path(shutil.copy2(source, folder / source.name)) for source in sources]


def test_a_folder_has_its_session_and_a_selection_its_own_whatever_the_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "study"
    (folder / "sub").mkdir(parents=True)
    first, second = folder / "a.dcm", folder / "sub" / "b.dcm"
    first.write_bytes(b"")
    second.write_bytes(b"")
    data = tmp_path / "data"
    assert session_store_for([folder], data).directory == SessionStore(folder, data).directory
    selection = session_store_for([first, second], data)
    monkeypatch.chdir(folder)
    assert session_store_for([Path("sub/b.dcm"), Path("a.dcm")], data).directory == selection.directory
    assert selection.directory != session_store_for([folder], data).directory
    assert selection.directory != session_store_for([first], data).directory
    assert session_store_for([folder, folder / "sub"], data).directory != session_store_for([folder], data).directory
    # The key the app has always used for a selection, so selections autosaved before are found again.
    resolved = "\n".join(sorted(str(path.resolve()) for path in (first, second)))
    assert selection.folder == folder / f".selection-{hashlib.sha256(resolved.encode()).hexdigest()[:12]}"
    with pytest.raises(ValueError):
        session_store_for([], data)


def test_a_selection_reopens_with_its_statuses_and_apart_from_its_folder(tmp_path: Path, siim_dir: Path) -> None:
    folder = tmp_path / "study"
    files = copy_siim(siim_dir, folder, 3)
    (folder / "notes.dcm").write_text("not a DICOM")
    data = tmp_path / "data"
    opened = open_studies([files[0], files[2], folder / "notes.dcm"], data)
    assert len(opened.session) == 2 and [problem.path.name for problem in opened.unreadable] == ["notes.dcm"]
    assert opened.title == f"3 files in {folder.resolve()}"
    opened.session.set_status(opened.session.cases[0].image_id, ReviewStatus.REJECTED)
    opened.session.close()

    again = open_studies([folder / "notes.dcm", files[2], files[0]], data)  # another order: the same session
    assert again.session.status_counts()[ReviewStatus.REJECTED] == 1
    whole = open_studies([folder], data)
    assert len(whole.session) == 3 and whole.title == str(folder)
    assert whole.session.status_counts()[ReviewStatus.REJECTED] == 0  # the folder's own session is untouched
    single = open_studies([files[0]], data)
    assert single.title == str(files[0].resolve()) and single.session.done_count == 0


def test_opening_reports_progress_and_each_header_as_found(tmp_path: Path, siim_dir: Path) -> None:
    folder = tmp_path / "study"
    files = copy_siim(siim_dir, folder / "series", 3)
    loose = copy_siim(siim_dir, tmp_path / "loose", 1, skip=3)
    found: list[str] = []
    progress: list[tuple[int, int]] = []
    opened = open_studies([folder, loose[0]], tmp_path / "data", lambda done, total: progress.append((done, total)),
                          lambda metadata: found.append(metadata.path.name))
    assert sorted(found) == sorted(path.name for path in files + loose) and len(opened.session) == 4
    assert progress[-4:] == [(1, 3), (2, 3), (3, 3), (1, 1)]
    assert opened.title == f"2 files and folders in {tmp_path.resolve()}"


def test_opening_a_path_that_does_not_exist_names_it(tmp_path: Path, siim_dir: Path) -> None:
    files = copy_siim(siim_dir, tmp_path / "study", 1)
    with pytest.raises(DicomError, match="nowhere.dcm: no such file or folder"):
        open_studies([files[0], tmp_path / "nowhere.dcm"], tmp_path / "data")
