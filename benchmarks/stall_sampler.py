"""What the GUI thread was doing during the event loop's late ticks: a side thread samples its Python stack.

Every 2 ms the sampler records the stacks of all threads (`sys._current_frames`); a benchmark's heartbeat
calls `stalled(start, end)` for each late tick, which counts the GUI thread's stacks sampled inside it
and what the other threads ran meanwhile, and `write(path)` lists those seen most. Time spent in Qt's
C++ (layout, paint) shows as the Python frame that entered it (e.g. `app.exec`). The sampler needs the
GIL to look, so it under-samples a GUI thread that holds it: a guide to where to look, not a profile.
Each late tick is also split (Linux schedstat of the GUI thread) into the time the thread ran on a CPU,
waited for one, and was blocked: blocked is where it waited for a lock, the GIL most likely.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
from pathlib import Path
from types import FrameType

SAMPLE_S = 0.002
STACK_DEPTH = 8


class StallSampler(threading.Thread):
    def __init__(self, thread_id: int, native_id: int | None = None) -> None:
        """`thread_id`: the GUI thread's `threading.get_ident()`; `native_id`: its `get_native_id()`, for schedstat."""
        super().__init__(daemon=True, name="stall-sampler")
        self._thread_id = thread_id
        self._schedstat = Path(f"/proc/self/task/{native_id}/schedstat") if native_id is not None else None
        # (when, the GUI thread's stack, the other threads' innermost frames, its CPU and run-queue ns then)
        self._samples: collections.deque[tuple[float, tuple[str, ...], tuple[str, ...], tuple[int, int]]] = (
            collections.deque(maxlen=50_000))
        self._stopped = threading.Event()
        self.leaves: collections.Counter[str] = collections.Counter()
        self.stacks: collections.Counter[tuple[str, ...]] = collections.Counter()
        self.beside: collections.Counter[str] = collections.Counter()  # the other threads' innermost frames
        self.stalls = 0
        # Each late tick's start and end, the span between the samples around it, and the GUI thread's time
        # on a CPU and waiting for one within that span (all in seconds).
        self.ticks: list[tuple[float, float, float, float, float]] = []

    def run(self) -> None:
        me = threading.get_ident()
        while not self._stopped.is_set():
            frames = sys._current_frames()
            others = tuple(_stack(frame, 3)[0] for ident, frame in frames.items()
                           if ident not in (me, self._thread_id))
            self._samples.append((time.perf_counter(), _stack(frames.get(self._thread_id), STACK_DEPTH), others,
                                  self._times()))
            time.sleep(SAMPLE_S)

    def _times(self) -> tuple[int, int]:
        """The GUI thread's nanoseconds on a CPU and waiting for one so far (0, 0 without schedstat)."""
        if self._schedstat is None:
            return 0, 0
        try:
            running, waiting = self._schedstat.read_text().split()[:2]
        except OSError:
            return 0, 0
        return int(running), int(waiting)

    def stop(self) -> None:
        self._stopped.set()

    def stalled(self, start: float, end: float) -> None:
        """A late tick from `start` to `end` (perf_counter seconds): count what the GUI thread ran meanwhile."""
        self.stalls += 1
        samples = list(self._samples)
        before = [(moment, times) for moment, *_, times in samples if moment <= start][-1:] or [(start, self._times())]
        after = [(moment, times) for moment, *_, times in samples if moment >= end][:1] or [(end, self._times())]
        (first, was), (last, now) = before[0], after[0]
        self.ticks.append((start, end, last - first, (now[0] - was[0]) / 1e9, (now[1] - was[1]) / 1e9))
        for moment, stack, others, _ in samples:
            if start <= moment <= end and stack:
                self.leaves[stack[0]] += 1
                self.stacks[stack] += 1
                self.beside.update(others)

    def write(self, path: Path, origin: float = 0.0) -> None:
        """`origin`: the perf_counter second the late ticks' times are given from (the benchmark's start)."""
        lines = [f"{self.stalls} late ticks; samples every {SAMPLE_S * 1000:.0f} ms", "", "innermost frames:"]
        lines += [f"{count:7d}  {leaf}" for leaf, count in self.leaves.most_common(40)]
        lines += ["", "stacks (innermost first):"]
        lines += [f"{count:7d}  " + " < ".join(stack) for stack, count in self.stacks.most_common(40)]
        lines += ["", "the other threads meanwhile (innermost frames):"]
        lines += [f"{count:7d}  {leaf}" for leaf, count in self.beside.most_common(40)]
        lines += ["", "the late ticks: when (s after the origin), how long the loop was away; then, between the"
                  " samples around it (ms), how long the GUI thread ran on a CPU, waited for one, and was blocked"
                  " (on a lock: the GIL most likely)"]
        lines += [f"  {start - origin:8.2f} s {(end - start) * 1000:6.0f} ms | span {span * 1000:6.0f}: ran "
                  f"{running * 1000:6.1f}, waited {waiting * 1000:6.1f}, "
                  f"blocked {(span - running - waiting) * 1000:6.1f}"
                  for start, end, span, running, waiting in self.ticks]
        Path(path).write_text("\n".join(lines) + "\n")


def _stack(frame: FrameType | None, depth: int) -> tuple[str, ...]:
    stack = []
    while frame is not None and len(stack) < depth:
        code = frame.f_code
        stack.append(f"{os.path.basename(code.co_filename)}:{code.co_name}:{frame.f_lineno}")
        frame = frame.f_back
    return tuple(stack) or ("?",)
