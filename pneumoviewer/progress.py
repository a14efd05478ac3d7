"""The one progress bar of the commands and of training: tqdm on a terminal, plain lines in a log.

On a terminal tqdm redraws its bar in place with carriage returns. Redirected to a file or a pipe
(`pneumoviewer predict … 2>log`, a job scheduler, CI, the training campaign's train.log) every redraw
would be kept, so there the bar prints a whole line each time another tenth is done, or after
LOG_INTERVAL_SECONDS (or the caller's interval) of progress without a line, and a last line at the
end (done, time taken, rate). Light: the commands that do no AI (export) use it too, so it must not
import the model's runtime. Qt-free, outside `commands`, so that core rooms (training) use it too.
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
    command may set once it is known); `set_postfix` shows figures after the count (a running loss)."""

    n: int
    total: int

    def update(self, n: int = 1) -> Any: ...
    def set_postfix(self, **figures: Any) -> Any: ...
    def write(self, s: str, file: TextIO | None = None) -> Any: ...
    def close(self) -> Any: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, *exc: object) -> Any: ...


def progress_bar(
    total: int, desc: str, unit: str = "image", stream: TextIO | None = None, *, initial: int = 0,
    log_interval_seconds: float = LOG_INTERVAL_SECONDS, enabled: bool = True,
) -> ProgressBar:
    """A bar over `total` items on `stream` (stderr): tqdm if it is a terminal, else `LogLines`.

    `initial`: items already done before this run (a resumed epoch); `log_interval_seconds`: the longest
    a log goes without a line while items get done; `enabled=False`: a bar that shows nothing.
    """
    stream = stream if stream is not None else sys.stderr
    if not enabled or _is_terminal(stream):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=stream, dynamic_ncols=True, initial=initial,
                    disable=not enabled)
    return LogLines(total, desc, unit, stream, initial=initial, interval_seconds=log_interval_seconds)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream: treat it as a log
        return False


class LogLines:
    """Progress as whole lines: `predict: 30/300 images (10%), 12 s, 2.5 images/s, about 108 s left`."""

    def __init__(
        self, total: int, desc: str, unit: str, stream: TextIO, clock: Callable[[], float] = time.monotonic,
        initial: int = 0, interval_seconds: float = LOG_INTERVAL_SECONDS,
    ) -> None:
        self.n = self._initial = self._lines_at = initial  # _lines_at: n when the last line was printed
        self.total = total
        self._desc, self._unit, self._stream, self._clock = desc, unit, stream, clock
        self._interval = interval_seconds
        self._started = self._last_line = clock()
        self._postfix = ""
        self._closed = False

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self._clock()
        next_tenth = (self._tenths(self._lines_at) + 1) * self.total / LOG_STEPS
        if self.n >= next_tenth or (now - self._last_line >= self._interval and self.n > self._lines_at):
            self._line(now)

    def set_postfix(self, **figures: Any) -> None:
        """Figures printed after the count on the next lines (tqdm's `loss=0.703`)."""
        self._postfix = ", ".join(f"{name}={value}" for name, value in figures.items())

    def write(self, s: str, file: TextIO | None = None) -> None:
        print(s, file=file if file is not None else self._stream, flush=True)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.n != self._lines_at or self.n == self._initial:
                self._line(self._clock())

    def __enter__(self) -> LogLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tenths(self, count: int) -> int:
        return LOG_STEPS if self.total <= 0 else count * LOG_STEPS // self.total

    def _line(self, now: float) -> None:
        seconds = now - self._started
        units = self._unit + ("es" if self._unit.endswith(("ch", "sh", "s", "x")) else "s")  # batches, images
        text = f"{self._desc}: {self.n}/{self.total} {units}"
        if self.total > 0:
            text += f" ({100 * self.n // self.total}%)"
        text += f", {seconds:.0f} s"
        done_here = self.n - self._initial  # a resumed run's rate counts only what this run did
        if done_here and seconds > 0:
            rate = done_here / seconds
            text += f", {rate:.1f} {units}/s"
            if 0 < self.n < self.total:
                text += f", about {(self.total - self.n) / rate:.0f} s left"
        if self._postfix:
            text += f", {self._postfix}"
        self.write(text)
        self._last_line, self._lines_at = now, self.n
