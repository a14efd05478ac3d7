"""The one door for every pixel change of an editable mask, with stroke-grouped undo.

Every edit (brush or eraser stroke, flood fill, replacing the whole mask) goes through a
`MaskEditor`. It records only the changed pixels as history atoms (flat indices plus the new
values; a changed pixel of a binary mask held the opposite value before), groups all atoms of one
mouse drag into one undo step, and reports the dirty rectangle so a view redraws only that part.

Coordinates: pixel (row, col) has its centre at (row, col). A view whose pixel `i` spans
[i, i + 1) (pyqtgraph's ImageItem) subtracts 0.5 from the mouse position before calling `paint`.
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple, ParamSpec, TypeVar

import numpy as np
from skimage.segmentation import flood

from pneumoviewer.review.events import Callbacks

DEFAULT_MAX_UNDO_STEPS = 100
# Fills of a large background can hold ~5 MB each; beyond this budget the oldest steps go.
DEFAULT_MAX_UNDO_BYTES = 64 * 1024 * 1024


P = ParamSpec("P")
R = TypeVar("R")


def _locked(method: Callable[P, R]) -> Callable[P, R]:
    """Edits come from the UI thread, an import may come from a worker: one edit at a time."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with args[0]._lock:  # type: ignore[attr-defined]
            return method(*args, **kwargs)

    return wrapper


class DirtyRect(NamedTuple):
    """The rectangle of pixels that changed: rows [row0, row1), columns [col0, col1)."""

    row0: int
    row1: int
    col0: int
    col1: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.row0, self.row1), slice(self.col0, self.col1)

    def union(self, other: DirtyRect | None) -> DirtyRect:
        if other is None:
            return self
        return DirtyRect(
            min(self.row0, other.row0), max(self.row1, other.row1),
            min(self.col0, other.col0), max(self.col1, other.col1),
        )


class EditKind(str, Enum):
    STROKE = "stroke"  # brush (value True) or eraser (value False) drag
    FILL = "fill"
    CLEAR = "clear"
    REPLACE = "replace"  # the whole mask set from elsewhere (the AI mask)
    UNDO = "undo"
    REDO = "redo"


# What a user does by hand; an edit of these kinds counts as a correction of the case.
MANUAL_EDITS = frozenset({EditKind.STROKE, EditKind.FILL, EditKind.CLEAR})


@dataclass(frozen=True)
class HistoryAtom:
    indices: np.ndarray  # flat (row-major) indices of the changed pixels
    new_values: np.ndarray  # bool, one per index; the old value is its negation

    @property
    def nbytes(self) -> int:
        return self.indices.nbytes + self.new_values.nbytes


@dataclass(frozen=True)
class EditStep:
    """One undo step: all atoms of a stroke, or a single fill / clear / replace."""

    kind: EditKind
    atoms: tuple[HistoryAtom, ...]
    rect: DirtyRect

    @property
    def nbytes(self) -> int:
        return sum(atom.nbytes for atom in self.atoms)


class MaskEditor:
    """Edits `mask` (2-D, bool, C-contiguous) in place; the caller keeps the same array.

    Callbacks: `pixels_changed(rect)` after every pixel change (each stroke segment, fill, undo...)
    for redrawing; `edit_committed(kind, rect)` once per completed undo step (end of a stroke, a
    fill, clear, replace, undo, redo) for autosave and status rules.
    """

    def __init__(
        self,
        mask: np.ndarray,
        max_undo_steps: int = DEFAULT_MAX_UNDO_STEPS,
        max_undo_bytes: int = DEFAULT_MAX_UNDO_BYTES,
    ) -> None:
        if mask.ndim != 2 or mask.dtype != np.bool_ or not mask.flags.c_contiguous:
            raise ValueError(f"the editable mask must be a 2-D C-contiguous bool array, got {mask.dtype} {mask.shape}")
        if not mask.flags.writeable:
            raise ValueError("the editable mask is read-only")
        self._lock = threading.RLock()
        self._mask = mask
        self._flat = mask.reshape(-1)  # a view: writing it writes the mask
        self._index_dtype = np.int32 if mask.size < 2**31 else np.int64
        self.max_undo_steps = max_undo_steps
        self.max_undo_bytes = max_undo_bytes
        self._undo: deque[EditStep] = deque()
        self._redo: list[EditStep] = []
        self._stroke_atoms: list[HistoryAtom] | None = None
        self._stroke_rect: DirtyRect | None = None
        self._last_point: tuple[float, float] | None = None
        self.pixels_changed: Callbacks[[DirtyRect]] = Callbacks()
        self.edit_committed: Callbacks[[EditKind, DirtyRect]] = Callbacks()

    @property
    def mask(self) -> np.ndarray:
        return self._mask

    @property
    def in_stroke(self) -> bool:
        return self._stroke_atoms is not None

    @property
    def can_undo(self) -> bool:
        return bool(self._undo) or bool(self._stroke_atoms)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_depth(self) -> int:
        return len(self._undo)

    @property
    def history_bytes(self) -> int:
        return sum(step.nbytes for step in self._undo) + sum(step.nbytes for step in self._redo)

    # -- strokes -----------------------------------------------------------------------------

    @_locked
    def begin_stroke(self) -> None:
        """Start a mouse drag; everything painted until `end_stroke` is one undo step."""
        self.end_stroke()
        self._stroke_atoms = []
        self._stroke_rect = None
        self._last_point = None

    @_locked
    def paint(
        self,
        rows: float | Sequence[float] | np.ndarray,
        cols: float | Sequence[float] | np.ndarray,
        radius: float,
        value: bool = True,
    ) -> DirtyRect | None:
        """Paint a round brush along the points (joined to the stroke's previous point, so fast
        drags leave no gaps). `value` True paints, False erases. Returns what changed, or None."""
        if self._stroke_atoms is None:
            raise RuntimeError("paint() outside a stroke: call begin_stroke() first")
        if radius < 0:
            raise ValueError(f"brush radius must be >= 0, got {radius}")
        row_points = np.atleast_1d(np.asarray(rows, dtype=np.float64))
        col_points = np.atleast_1d(np.asarray(cols, dtype=np.float64))
        if row_points.shape != col_points.shape or row_points.ndim != 1:
            raise ValueError("paint() needs as many rows as columns")
        if not (np.isfinite(row_points).all() and np.isfinite(col_points).all()):
            raise ValueError("paint() got a point that is not a finite number")
        points = list(zip(row_points.tolist(), col_points.tolist(), strict=True))
        if self._last_point is not None:
            points.insert(0, self._last_point)
        if not points:
            return None
        self._last_point = points[-1]
        segments = list(zip(points[:-1], points[1:], strict=True)) or [(points[0], points[0])]
        # Never thinner than a one-pixel line (pixel centres within half a pixel of the path).
        reach = max(float(radius), 0.5)
        changed: DirtyRect | None = None
        for start, end in segments:
            atom_rect = self._paint_segment(start, end, reach, bool(value))
            if atom_rect is not None:
                changed = atom_rect.union(changed)
        if changed is not None:
            self._stroke_rect = changed.union(self._stroke_rect)
            self.pixels_changed.emit(changed)
        return changed

    @_locked
    def end_stroke(self) -> DirtyRect | None:
        """Close the stroke as one undo step; returns its whole dirty rectangle (None if nothing changed)."""
        atoms, rect = self._stroke_atoms, self._stroke_rect
        self._stroke_atoms, self._stroke_rect, self._last_point = None, None, None
        if not atoms or rect is None:
            return None
        self._commit(EditStep(EditKind.STROKE, tuple(atoms), rect))
        return rect

    def _paint_segment(
        self, start: tuple[float, float], end: tuple[float, float], reach: float, value: bool
    ) -> DirtyRect | None:
        height, width = self._mask.shape
        row0 = max(int(np.floor(min(start[0], end[0]) - reach)), 0)
        row1 = min(int(np.ceil(max(start[0], end[0]) + reach)) + 1, height)
        col0 = max(int(np.floor(min(start[1], end[1]) - reach)), 0)
        col1 = min(int(np.ceil(max(start[1], end[1]) + reach)) + 1, width)
        if row0 >= row1 or col0 >= col1:
            return None
        # Distance of every pixel centre in the bounding box to the segment (a capsule brush).
        grid_rows, grid_cols = np.ogrid[row0:row1, col0:col1]
        delta_row, delta_col = end[0] - start[0], end[1] - start[1]
        length_sq = delta_row * delta_row + delta_col * delta_col
        from_row, from_col = grid_rows - start[0], grid_cols - start[1]
        if length_sq > 0:
            along = np.clip((from_row * delta_row + from_col * delta_col) / length_sq, 0.0, 1.0)
            from_row = from_row - along * delta_row
            from_col = from_col - along * delta_col
        inside = from_row * from_row + from_col * from_col <= reach * reach
        window = self._mask[row0:row1, col0:col1]
        to_change = inside & (window != value)
        local_rows, local_cols = np.nonzero(to_change)
        if local_rows.size == 0:
            return None
        window[to_change] = value
        indices = ((local_rows + row0) * width + (local_cols + col0)).astype(self._index_dtype)
        assert self._stroke_atoms is not None  # paint() begins a stroke before painting a segment
        self._stroke_atoms.append(HistoryAtom(indices, np.full(indices.size, value)))
        return DirtyRect(
            row0 + int(local_rows.min()), row0 + int(local_rows.max()) + 1,
            col0 + int(local_cols.min()), col0 + int(local_cols.max()) + 1,
        )

    # -- single-step edits -----------------------------------------------------------------------

    @_locked
    def fill(self, row: int, col: int, value: bool = True) -> DirtyRect | None:
        """Set the 4-connected region of equal value around (row, col) to `value`.

        Clicking inside a drawn closed contour fills its inside: brush strokes are 8-connected
        walls, which a 4-connected fill cannot leak through diagonally.
        """
        self.end_stroke()
        height, width = self._mask.shape
        if not (0 <= row < height and 0 <= col < width):
            return None
        if bool(self._mask[row, col]) == bool(value):
            return None
        region = flood(self._mask, (int(row), int(col)), connectivity=1)
        indices = np.flatnonzero(region).astype(self._index_dtype, copy=False)
        return self._apply_new_step(EditKind.FILL, indices, np.full(indices.size, bool(value)))

    @_locked
    def set_mask(self, mask: np.ndarray, kind: EditKind = EditKind.REPLACE) -> DirtyRect | None:
        """Replace the whole mask (e.g. start from the AI mask) as one undo step."""
        self.end_stroke()
        new = np.asarray(mask)
        if new.shape != self._mask.shape:
            raise ValueError(f"mask shape {new.shape} does not match the image {self._mask.shape}")
        new_flat = new.reshape(-1).astype(bool, copy=False)
        indices = np.flatnonzero(new_flat != self._flat).astype(self._index_dtype, copy=False)
        return self._apply_new_step(kind, indices, new_flat[indices])

    def clear(self) -> DirtyRect | None:
        """Erase the whole mask as one undo step."""
        return self.set_mask(np.zeros(self._mask.shape, dtype=bool), EditKind.CLEAR)

    def _apply_new_step(self, kind: EditKind, indices: np.ndarray, new_values: np.ndarray) -> DirtyRect | None:
        if indices.size == 0:
            return None
        self._flat[indices] = new_values
        rect = self._rect_of(indices)
        self.pixels_changed.emit(rect)
        self._commit(EditStep(kind, (HistoryAtom(indices, new_values),), rect))
        return rect

    # -- undo / redo -----------------------------------------------------------------------------

    @_locked
    def undo(self) -> DirtyRect | None:
        self.end_stroke()
        if not self._undo:
            return None
        step = self._undo.pop()
        for atom in reversed(step.atoms):
            self._flat[atom.indices] = ~atom.new_values
        self._redo.append(step)
        self.pixels_changed.emit(step.rect)
        self.edit_committed.emit(EditKind.UNDO, step.rect)
        return step.rect

    @_locked
    def redo(self) -> DirtyRect | None:
        self.end_stroke()
        if not self._redo:
            return None
        step = self._redo.pop()
        for atom in step.atoms:
            self._flat[atom.indices] = atom.new_values
        self._undo.append(step)
        self.pixels_changed.emit(step.rect)
        self.edit_committed.emit(EditKind.REDO, step.rect)
        return step.rect

    def _commit(self, step: EditStep) -> None:
        self._undo.append(step)
        self._redo.clear()
        held = sum(s.nbytes for s in self._undo)
        while len(self._undo) > 1 and (len(self._undo) > self.max_undo_steps or held > self.max_undo_bytes):
            held -= self._undo.popleft().nbytes
        self.edit_committed.emit(step.kind, step.rect)

    def _rect_of(self, indices: np.ndarray) -> DirtyRect:
        width = self._mask.shape[1]
        rows, cols = np.divmod(indices, width)
        return DirtyRect(int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1)
