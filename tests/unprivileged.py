"""Checking file permissions honestly when the tests run as root (who ignores them): a forked child gives root up.

`run_without_root(work)` returns `work()`'s JSON-able result, computed as user `nobody` when this
process is root, else directly. The files it touches must be in a folder anyone can enter:
`open_folder` (pytest's own temporary folders are private to their owner).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

NOBODY = 65534


@pytest.fixture
def open_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="pneumoviewer-permissions-"))
    folder.chmod(0o777)
    yield folder
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        if not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder)


def run_without_root(work: Callable[[], Any], timeout: float = 60) -> Any:
    """`work()` with file permissions in force. Import everything it needs before calling (no lazy imports)."""
    if os.geteuid() != 0:
        return work()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        status = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write_end, json.dumps(work()).encode())
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            os.write(write_end, json.dumps({"child failed": repr(error)}).encode())
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    deadline = time.monotonic() + timeout
    while os.waitpid(child, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(child, 9)
            os.waitpid(child, 0)
            pytest.fail("the unprivileged child hung")
        time.sleep(0.02)
    with os.fdopen(read_end, "rb") as stream:
        return json.loads(stream.read() or b"null")
