"""Plain-callback change notification: the core announces changes, the UI subscribes. No Qt."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, ParamSpec

P = ParamSpec("P")


class Callbacks(Generic[P]):
    """A list of subscribers called in order with the same arguments.

    Subscribers run on the thread that made the change; a Qt UI that edits from worker threads
    should re-emit them as queued signals.
    """

    def __init__(self) -> None:
        self._subscribers: list[Callable[P, object]] = []

    def connect(self, callback: Callable[P, object]) -> None:
        if callback not in self._subscribers:
            self._subscribers.append(callback)

    def disconnect(self, callback: Callable[P, object]) -> None:
        if callback in self._subscribers:
            self._subscribers.remove(callback)

    def emit(self, *args: P.args, **kwargs: P.kwargs) -> None:
        for callback in list(self._subscribers):
            callback(*args, **kwargs)
