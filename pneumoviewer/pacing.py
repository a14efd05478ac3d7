"""Background work that shares the interpreter's lock (the GIL) with a window: paced loops, collections paused.

In the app a folder's opening ends on a worker thread with loops over every study (the cases built,
the header index encoded, the AI's jobs listed): a few hundred milliseconds of Python. The GUI thread
paints the worklist meanwhile, and each of its many calls into Python (a cell's data, a slot) waits
for the GIL; CPython hands it over only every switch interval (5 ms), so one paint waited for dozens
of them: 95-120 ms stalls when indexing ended, against 4-6 ms with the thread idle (benchmarks/
bench_opening_end.py). `paced` sleeps for a moment after each `WORK_S` of the loop, so a waiting thread gets the lock
within about that long instead of 5 ms: 20-35 ms stalls. The loop takes ~1.5 times as long.

A full garbage collection walks every object not frozen and holds the GIL meanwhile (20-200 ms in the
app): `garbage_collection_paused` keeps it from starting in a stretch that makes many lasting objects
(a folder's 10,000 cases, the model's imports), then freezes them out of later collections.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

WORK_S = 0.001  # a stretch of the loop...
# ...then the GIL is left this long: a sleep releases it, and the waiting thread must wake and take it before the
# sleep ends. With both cores busy (bench_opening_end), 0.1 ms pauses left 27-33 ms stalls, 0.5 ms ones 13-34 ms.
PAUSE_S = 0.0005

Item = TypeVar("Item")


def paced(items: Iterable[Item]) -> Iterator[Item]:
    """Each item of `items`, with a `PAUSE_S` sleep after each `WORK_S` of the caller's loop. On the main
    thread (a command, a script) the items come unpaced: no window of ours waits beside it."""
    if threading.current_thread() is threading.main_thread():
        yield from items
        return
    clock = time.perf_counter
    resume_at = clock() + WORK_S
    for item in items:
        yield item
        if clock() >= resume_at:
            time.sleep(PAUSE_S)
            resume_at = clock() + WORK_S


@contextmanager
def garbage_collection_paused() -> Iterator[None]:
    """No cyclic garbage collection meanwhile (in the whole process), then what survived is frozen
    (`gc.freeze`): such objects live on (the model's modules, a session's cases), and frozen, later
    collections skip them. Importing torch made about a million objects; each full collection that
    triggered held the GIL for 0.1-0.2 s."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
