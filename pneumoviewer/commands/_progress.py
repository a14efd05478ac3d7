"""The one progress bar of the commands: tqdm on a terminal, plain lines in a log.

On a terminal tqdm redraws its bar in place with carriage returns. Redirected to a file or a pipe
(`pneumoviewer predict … 2>log`, a job scheduler, CI) every redraw would be kept, so there the bar
prints a whole line each time another tenth is done, or after LOG_INTERVAL_SECONDS of progress
without a line, and a last line at the end (done, time taken, rate). Light: the commands that do no
AI (export) use it too, so it must not import the model's runtime.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

LOG_STEPS = 10  # a line each tenth of the work
LOG_INTERVAL_SECONDS = 10.0  # and at least this often while items keep getting done


class ProgressBar(Protocol):
    """What the commands use of a bar (tqdm's names): `n` items done so far, out of `total` (which a
    command may set once it is known)."""

    n: int
    total: int

    def update(self, n: int = 1) -> Any: ...
    def write(self, s: str, file: TextIO | None = None) -> Any: ...
    def close(self) -> Any: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, *exc: object) -> Any: ...


def progress_bar(total: int, desc: str, unit: str = "image", stream: TextIO | None = None) -> ProgressBar:
    """A bar over `total` items on `stream` (stderr): tqdm if it is a terminal, else `LogLines`."""
    stream = stream if stream is not None else sys.stderr
    if _is_terminal(stream):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=stream, dynamic_ncols=True)
    return LogLines(total, desc, unit, stream)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream: treat it as a log
        return False


class LogLines:
    """Progress as whole lines: `predict: 30/300 images (10%), 12 s, 2.5 images/s, about 108 s left`."""

    def __init__(
        self, total: int, desc: str, unit: str, stream: TextIO, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.n = 0
        self.total = total
        self._desc, self._unit, self._stream, self._clock = desc, unit, stream, clock
        self._started = self._last_line = clock()
        self._lines_at = 0  # n when the last line was printed
        self._closed = False

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self._clock()
        next_tenth = (self._tenths(self._lines_at) + 1) * self.total / LOG_STEPS
        if self.n >= next_tenth or (now - self._last_line >= LOG_INTERVAL_SECONDS and self.n > self._lines_at):
            self._line(now)

    def write(self, s: str, file: TextIO | None = None) -> None:
        print(s, file=file if file is not None else self._stream, flush=True)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.n != self._lines_at or self.n == 0:
                self._line(self._clock())

    def __enter__(self) -> LogLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tenths(self, count: int) -> int:
        return LOG_STEPS if self.total <= 0 else count * LOG_STEPS // self.total

    def _line(self, now: float) -> None:
        seconds = now - self._started
        text = f"{self._desc}: {self.n}/{self.total} {self._unit}s"
        if self.total > 0:
            text += f" ({100 * self.n // self.total}%)"
        text += f", {seconds:.0f} s"
        if self.n and seconds > 0:
            rate = self.n / seconds
            text += f", {rate:.1f} {self._unit}s/s"
            if 0 < self.n < self.total:
                text += f", about {(self.total - self.n) / rate:.0f} s left"
        self.write(text)
        self._last_line, self._lines_at = now, self.n
