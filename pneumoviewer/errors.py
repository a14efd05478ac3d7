"""What every room shares about failing and long work: one error base, one cancel, one progress type.

`FileProblem` is the base of every error that is about one file (a DICOM that cannot be read, a
damaged model, an annotation CSV with a bad row, an export that cannot be written): it carries the
`path` and a `reason` in plain words, and `str()` is "<path>: <reason>", which is what the CLI
prints after "pneumoviewer: " and what the window shows. Long calls take a `ProgressCallback`
(done, total) and a `CancelCheck`; they call `raise_if_cancelled` between steps, never mid-step.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

ProgressCallback = Callable[[int, int], None]  # (done, total) after each step
CancelCheck = Callable[[], bool]  # True = stop at the next step boundary


class FileProblem(Exception):
    """A problem with one file; `path` names it, `reason` says what is wrong in plain words."""

    def __init__(self, path: str | os.PathLike[str], reason: str, where: str | None = None) -> None:
        self.path = Path(path)
        self.reason = reason
        # `where` refines the location in the message ("file.csv, line 7"); the path stays the file.
        self.where = where
        super().__init__(f"{where or self.path}: {reason}")

    def __reduce__(self) -> tuple[type[FileProblem], tuple[Path, str, str | None]]:
        # Pickled as what it was made of (a child process's verdict on a file comes back this way);
        # the default would call the class with the message alone.
        return type(self), (self.path, self.reason, self.where)


class Cancelled(Exception):
    """The caller's `CancelCheck` returned True; raised between steps, so nothing is left half done."""


def raise_if_cancelled(cancel: CancelCheck | None, what: str = "cancelled") -> None:
    if cancel is not None and cancel():
        raise Cancelled(what)
