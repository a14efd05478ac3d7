"""The one edit door: exact pixels per stroke, stroke-grouped undo, fill, dirty rectangles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pneumoviewer.review.mask_editor import DirtyRect, EditKind, MaskEditor

SIZE = 1024


def disc(center: tuple[float, float], radius: float, shape: tuple[int, int] = (SIZE, SIZE)) -> np.ndarray:
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - center[0]) ** 2 + (cols - center[1]) ** 2 <= radius**2


def bounding_rect(mask: np.ndarray) -> DirtyRect:
    rows, cols = np.nonzero(mask)
    return DirtyRect(rows.min(), rows.max() + 1, cols.min(), cols.max() + 1)


@pytest.fixture
def editor() -> MaskEditor:
    return MaskEditor(np.zeros((SIZE, SIZE), dtype=bool))


def test_a_dab_changes_exactly_the_disc_and_reports_its_rectangle(editor: MaskEditor) -> None:
    editor.begin_stroke()
    rect = editor.paint(500, 300, radius=7)
    editor.end_stroke()
    expected = disc((500, 300), 7)
    assert np.array_equal(editor.mask, expected)
    assert rect == bounding_rect(expected) == DirtyRect(493, 508, 293, 308)


def test_a_fast_drag_leaves_no_gap_and_equals_the_union_of_discs_along_the_path(editor: MaskEditor) -> None:
    editor.begin_stroke()
    editor.paint(100, 100, radius=3)
    editor.paint(100, 400, radius=3)  # 300 px in one mouse event
    editor.end_stroke()
    # The union of discs centred every 0.1 px along the path (computed in a window around it).
    rows, cols = np.ogrid[:SIZE, 90:411]
    expected_window = np.zeros((SIZE, 321), dtype=bool)
    for col in np.linspace(100, 400, 3001):
        expected_window[90:111] |= ((rows[90:111] - 100) ** 2 + (cols - col) ** 2 <= 9)
    assert np.array_equal(editor.mask[:, 90:411], expected_window)
    assert editor.mask.sum() == expected_window.sum()
    assert editor.mask[100, 100:401].all()


def test_the_editor_edits_the_callers_array_in_place() -> None:
    mask = np.zeros((64, 64), dtype=bool)
    editor = MaskEditor(mask)
    editor.begin_stroke()
    editor.paint([10, 20], [10, 10], radius=2)
    editor.end_stroke()
    assert editor.mask is mask and mask[15, 10]


def test_one_stroke_is_one_undo_step_and_undo_redo_restore_exactly(editor: MaskEditor) -> None:
    editor.begin_stroke()
    editor.paint(50, 50, radius=5)
    editor.end_stroke()
    after_first = editor.mask.copy()
    editor.begin_stroke()
    for step in range(40):  # many mouse events, one drag
        editor.paint(200 + step * 3, 200 + step, radius=4)
    stroke_rect = editor.end_stroke()
    after_second = editor.mask.copy()
    assert editor.undo_depth == 2

    assert editor.undo() == stroke_rect
    assert np.array_equal(editor.mask, after_first)
    assert editor.undo() is not None
    assert not editor.mask.any()
    assert editor.undo() is None  # nothing left
    editor.redo()
    editor.redo()
    assert np.array_equal(editor.mask, after_second)
    assert editor.redo() is None


def test_the_eraser_removes_only_inside_the_brush_and_undo_puts_pixels_back(editor: MaskEditor) -> None:
    editor.set_mask(disc((300, 300), 60))
    before = editor.mask.copy()
    editor.begin_stroke()
    rect = editor.paint([300, 300], [250, 350], radius=5, value=False)
    editor.end_stroke()
    erased = before & ~editor.mask
    assert not (editor.mask & ~before).any()  # the eraser never adds
    assert erased[300, 250:351].all() and erased.sum() > 0
    assert rect == bounding_rect(erased)
    editor.undo()
    assert np.array_equal(editor.mask, before)


def test_a_brush_over_existing_pixels_records_only_the_changed_ones(editor: MaskEditor) -> None:
    editor.set_mask(disc((100, 100), 20))
    editor.begin_stroke()
    assert editor.paint(100, 100, radius=10) is None  # already painted: nothing changes
    assert editor.end_stroke() is None
    assert editor.undo_depth == 1  # no empty step was recorded


def test_new_edit_after_undo_discards_the_redo_branch(editor: MaskEditor) -> None:
    for center in (100, 200):
        editor.begin_stroke()
        editor.paint(center, center, radius=3)
        editor.end_stroke()
    editor.undo()
    editor.begin_stroke()
    editor.paint(400, 400, radius=3)
    editor.end_stroke()
    assert not editor.can_redo
    assert not editor.mask[200, 200] and editor.mask[400, 400]


def test_fill_fills_a_closed_contour_and_nothing_outside(editor: MaskEditor) -> None:
    # A closed polygon drawn with a thin brush, as a user would.
    corners = [(200, 200), (200, 500), (420, 560), (450, 260), (200, 200)]
    editor.begin_stroke()
    editor.paint([r for r, _ in corners], [c for _, c in corners], radius=1)
    editor.end_stroke()
    contour = editor.mask.copy()
    rect = editor.fill(320, 350)
    filled = editor.mask & ~contour
    assert filled[320, 350] and filled.sum() > 40_000
    assert not editor.mask[:195].any() and not editor.mask[:, :195].any()  # outside untouched
    assert not editor.mask[600:].any() and not editor.mask[:, 600:].any()
    assert rect == bounding_rect(filled)
    assert editor.undo() == rect
    assert np.array_equal(editor.mask, contour)


def test_fill_on_a_pixel_already_of_that_value_does_nothing(editor: MaskEditor) -> None:
    assert editor.fill(10, 10, value=False) is None
    assert editor.undo_depth == 0


def test_filling_with_false_erases_one_lesion_only(editor: MaskEditor) -> None:
    first, second = disc((100, 100), 20), disc((400, 400), 20)
    editor.set_mask(first | second)
    editor.fill(100, 100, value=False)
    assert np.array_equal(editor.mask, second)


def test_start_from_ai_and_clear_are_each_one_undo_step(editor: MaskEditor) -> None:
    ai_mask = disc((500, 500), 100) | disc((200, 800), 30)
    editor.set_mask(ai_mask)
    assert np.array_equal(editor.mask, ai_mask)
    editor.clear()
    assert not editor.mask.any()
    assert editor.undo_depth == 2
    editor.undo()
    assert np.array_equal(editor.mask, ai_mask)
    editor.undo()
    assert not editor.mask.any()


def test_history_atoms_hold_only_changed_pixels(editor: MaskEditor) -> None:
    editor.begin_stroke()
    editor.paint([100, 100], [100, 300], radius=10)
    editor.end_stroke()
    changed = int(editor.mask.sum())
    assert editor.history_bytes == changed * (4 + 1)  # int32 index + bool value per pixel
    assert editor.history_bytes < SIZE * SIZE // 40  # vs 1 MiB for a snapshot of the mask


def test_history_depth_is_bounded() -> None:
    editor = MaskEditor(np.zeros((64, 64), dtype=bool), max_undo_steps=3)
    for col in range(0, 60, 10):
        editor.begin_stroke()
        editor.paint(5, col, radius=1)
        editor.end_stroke()
    assert editor.undo_depth == 3
    while editor.undo() is not None:
        pass
    assert editor.mask[5, :30].any() and not editor.mask[5, 30:].any()  # the oldest 3 stay


def test_callbacks_report_every_change_and_each_committed_step(editor: MaskEditor) -> None:
    redraws: list[DirtyRect] = []
    commits: list[EditKind] = []
    editor.pixels_changed.connect(redraws.append)
    editor.edit_committed.connect(lambda kind, rect: commits.append(kind))
    editor.begin_stroke()
    editor.paint(10, 10, radius=2)
    editor.paint(10, 30, radius=2)
    editor.end_stroke()
    editor.undo()
    editor.fill(500, 500)
    assert len(redraws) == 4
    assert commits == [EditKind.STROKE, EditKind.UNDO, EditKind.FILL]


def test_painting_at_the_border_is_clipped_to_the_image(editor: MaskEditor) -> None:
    editor.begin_stroke()
    rect = editor.paint([0, -50], [SIZE - 1, SIZE + 50], radius=4)
    editor.end_stroke()
    assert rect.row0 == 0 and rect.col1 == SIZE
    assert editor.mask[0, SIZE - 1]


def test_misuse_is_refused_clearly(editor: MaskEditor) -> None:
    with pytest.raises(RuntimeError, match="begin_stroke"):
        editor.paint(1, 1, radius=1)
    with pytest.raises(ValueError, match="shape"):
        editor.set_mask(np.zeros((10, 10), dtype=bool))
    with pytest.raises(ValueError, match="bool"):
        MaskEditor(np.zeros((10, 10), dtype=np.uint8))


edit_actions = st.lists(
    st.one_of(
        # A stroke may switch between brush and eraser midway: each point carries its value.
        st.tuples(st.just("stroke"), st.lists(st.tuples(st.floats(-5, 70), st.floats(-5, 70), st.booleans()),
                                              min_size=1, max_size=4), st.floats(0, 6)),
        st.tuples(st.just("fill"), st.integers(0, 63), st.integers(0, 63), st.booleans()),
        st.tuples(st.just("clear")),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(edit_actions)
def test_any_edit_sequence_undoes_to_each_earlier_mask_and_redoes_back(actions: list[tuple]) -> None:
    editor = MaskEditor(np.zeros((64, 64), dtype=bool))
    snapshots = [editor.mask.copy()]
    for action in actions:
        if action[0] == "stroke":
            _, points, radius = action
            editor.begin_stroke()
            for row, col, value in points:
                before = editor.mask.copy()
                rect = editor.paint(row, col, radius, value)
                if rect is None:
                    assert np.array_equal(before, editor.mask)
                else:
                    assert changed_within(before, editor.mask, rect)
            changed = editor.end_stroke()
        elif action[0] == "fill":
            changed = editor.fill(action[1], action[2], action[3])
        else:
            changed = editor.clear()
        if changed is not None:
            snapshots.append(editor.mask.copy())
    assert editor.undo_depth == len(snapshots) - 1
    for expected in reversed(snapshots[:-1]):
        before = editor.mask.copy()
        rect = editor.undo()
        assert np.array_equal(editor.mask, expected)
        assert changed_within(before, editor.mask, rect)
    for expected in snapshots[1:]:
        before = editor.mask.copy()
        rect = editor.redo()
        assert np.array_equal(editor.mask, expected)
        assert changed_within(before, editor.mask, rect)


def changed_within(before: np.ndarray, after: np.ndarray, rect: DirtyRect) -> bool:
    """Every pixel that differs lies inside the reported dirty rectangle."""
    outside = np.ones(before.shape, dtype=bool)
    outside[rect.slices] = False
    return not (outside & (before != after)).any()
