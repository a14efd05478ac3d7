"""Memory stays bounded while a reader steps through a folder: decoded images and heatmaps live in small LRU caches.

The figure over 500 real images (peak RSS) comes from benchmarks/bench_memory.py; these tests check the
bound itself in the real window, with Grad-CAM on, over more cases than either cache holds, and what
each case keeps for the whole session (its AI mask, packed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import ui_driver  # tests/ui_driver.py
from ui_driver import WAIT_MS

from pneumoviewer.review.case import Case
from pneumoviewer.ui.controller import HEATMAP_CACHE_SIZE, IMAGE_CACHE_SIZE

make_window = ui_driver.make_window  # fixture
CASES = HEATMAP_CACHE_SIZE + 4


@pytest.fixture
def large_folder(tmp_path: Path, siim_dir: Path) -> Path:
    folder = tmp_path / "studies"
    folder.mkdir()
    for path in sorted((siim_dir / "dicom-images").rglob("*.dcm"))[:CASES]:
        (folder / path.name).symlink_to(path)
    return folder


def test_stepping_through_a_folder_keeps_at_most_a_few_decoded_images_and_heatmaps(
    qtbot, make_window, large_folder: Path
) -> None:
    window = make_window()
    window.actions_by_name["toggle_heatmap"].setChecked(True)
    with qtbot.waitSignal(window.controller.sigSessionOpened, timeout=WAIT_MS):
        window.controller.open_paths([large_folder])
    most_images = most_heatmaps = 0
    for case in list(window.controller.session.cases):
        window.worklist.selectRow(window.worklist_model.row_of(case.image_id))
        qtbot.waitUntil(lambda case=case: window.case_view.image_id_on_canvas == case.image_id, timeout=WAIT_MS)
        qtbot.waitUntil(lambda case=case: case.image_id in window.controller.heatmaps, timeout=WAIT_MS)
        most_images = max(most_images, len(window.controller.images))
        most_heatmaps = max(most_heatmaps, len(window.controller.heatmaps))
    assert most_images == IMAGE_CACHE_SIZE and most_heatmaps == HEATMAP_CACHE_SIZE  # full, never more
    # The most recent ones are kept (the case on screen among them; the next one may have been
    # prefetched after it), so going back to one of them needs no decoding.
    assert window.controller.current_id in window.controller.images


def test_a_case_keeps_its_ai_mask_in_a_few_bytes_and_gives_it_back_exactly() -> None:
    """Every case keeps its AI result for the whole session: the box around the lesion, 1 bit a pixel."""
    empty, lesion = (Case(f"1.2.3.{n}", f"Case {n}", (1024, 1024)) for n in (1, 2))
    mask = np.zeros((1024, 1024), dtype=bool)
    mask[100:180, 700:760] = True
    mask[150, 900] = True
    empty.set_ai_result(0.1, np.zeros_like(mask), False)
    lesion.set_ai_result(0.9, mask, True)
    assert empty.has_ai_result and not empty.ai_mask.any() and empty._ai_bits.nbytes == 0
    np.testing.assert_array_equal(lesion.ai_mask, mask)
    assert lesion._ai_bits.nbytes == 80 * 201 // 8  # the box (rows 100-179, columns 700-900), not 128 kB
