"""`pneumoviewer.pacing`: a background loop leaves the GIL to the window between short stretches, and no full
collection starts while a folder's cases are built (benchmarks/bench_opening_end.py measures the stalls)."""

from __future__ import annotations

import gc
import threading
from types import SimpleNamespace

import pytest

from pneumoviewer import pacing


class FakeTime:
    """A clock that moves `step_s` at each reading, and records the sleeps."""

    def __init__(self, step_s: float) -> None:
        self.now = 0.0
        self.step_s = step_s
        self.sleeps: list[float] = []

    def perf_counter(self) -> float:
        self.now += self.step_s
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def run_on_a_worker(function):
    result = []
    worker = threading.Thread(target=lambda: result.append(function()))
    worker.start()
    worker.join()
    return result[0]


def test_a_worker_s_loop_pauses_after_each_stretch_and_keeps_every_item_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeTime(step_s=pacing.WORK_S / 4)  # four items per stretch
    monkeypatch.setattr(pacing, "time", SimpleNamespace(perf_counter=fake.perf_counter, sleep=fake.sleep))
    items = [object() for _ in range(40)]
    assert run_on_a_worker(lambda: list(pacing.paced(items))) == items
    assert fake.sleeps == [pacing.PAUSE_S] * 10


def test_the_main_thread_is_not_paced(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command runs on the main thread: no window waits beside it, so nothing slows it."""
    fake = FakeTime(step_s=pacing.WORK_S)
    monkeypatch.setattr(pacing, "time", SimpleNamespace(perf_counter=fake.perf_counter, sleep=fake.sleep))
    assert list(pacing.paced(range(100))) == list(range(100))
    assert fake.sleeps == []


def test_no_collection_while_paused_then_what_lives_on_is_frozen() -> None:
    frozen_before = gc.get_freeze_count()
    collections: list[int] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        with pytest.raises(RuntimeError), pacing.garbage_collection_paused():
            assert not gc.isenabled()
            kept = [[index] for index in range(200_000)]  # far past generation 0's threshold
            raise RuntimeError("the work failed")
    finally:
        gc.callbacks.remove(count)
    assert gc.isenabled()  # on again, even after a failure
    assert collections == []
    assert gc.get_freeze_count() >= frozen_before + len(kept)
    gc.unfreeze()  # leave the test process as it was
