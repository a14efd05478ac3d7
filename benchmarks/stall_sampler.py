"""What the GUI thread was doing during the event loop's late ticks: a side thread samples its Python stack.

Every 2 ms the sampler records the stacks of all threads (`sys._current_frames`); a benchmark's heartbeat
calls `stalled(start, end)` for each late tick, which counts the GUI thread's stacks sampled inside it
and what the other threads ran meanwhile, and `write(path)` lists those seen most. Time spent in Qt's
C++ (layout, paint) shows as the Python frame that entered it (e.g. `app.exec`). The sampler needs the
GIL to look, so it under-samples a GUI thread that holds it: a guide to where to look, not a profile.
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
    def __init__(self, thread_id: int) -> None:
        super().__init__(daemon=True, name="stall-sampler")
        self._thread_id = thread_id
        self._samples: collections.deque[tuple[float, tuple[str, ...], tuple[str, ...]]] = collections.deque(
            maxlen=50_000)
        self._stopped = threading.Event()
        self.leaves: collections.Counter[str] = collections.Counter()
        self.stacks: collections.Counter[tuple[str, ...]] = collections.Counter()
        self.beside: collections.Counter[str] = collections.Counter()  # the other threads' innermost frames
        self.stalls = 0

    def run(self) -> None:
        me = threading.get_ident()
        while not self._stopped.is_set():
            frames = sys._current_frames()
            others = tuple(_stack(frame, 3)[0] for ident, frame in frames.items()
                           if ident not in (me, self._thread_id))
            self._samples.append((time.perf_counter(), _stack(frames.get(self._thread_id), STACK_DEPTH), others))
            time.sleep(SAMPLE_S)

    def stop(self) -> None:
        self._stopped.set()

    def stalled(self, start: float, end: float) -> None:
        """A late tick from `start` to `end` (perf_counter seconds): count what the GUI thread ran meanwhile."""
        self.stalls += 1
        for moment, stack, others in list(self._samples):
            if start <= moment <= end and stack:
                self.leaves[stack[0]] += 1
                self.stacks[stack] += 1
                self.beside.update(others)

    def write(self, path: Path) -> None:
        lines = [f"{self.stalls} late ticks; samples every {SAMPLE_S * 1000:.0f} ms", "", "innermost frames:"]
        lines += [f"{count:7d}  {leaf}" for leaf, count in self.leaves.most_common(40)]
        lines += ["", "stacks (innermost first):"]
        lines += [f"{count:7d}  " + " < ".join(stack) for stack, count in self.stacks.most_common(40)]
        lines += ["", "the other threads meanwhile (innermost frames):"]
        lines += [f"{count:7d}  {leaf}" for leaf, count in self.beside.most_common(40)]
        Path(path).write_text("\n".join(lines) + "\n")


def _stack(frame: FrameType | None, depth: int) -> tuple[str, ...]:
    stack = []
    while frame is not None and len(stack) < depth:
        code = frame.f_code
        stack.append(f"{os.path.basename(code.co_filename)}:{code.co_name}:{frame.f_lineno}")
        frame = frame.f_back
    return tuple(stack) or ("?",)
