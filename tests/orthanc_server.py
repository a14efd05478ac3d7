"""A real Orthanc for the PACS tests and benchmark, on a loopback that nothing outside can reach.

Orthanc 1.10 cannot bind to loopback only (`RemoteAccessAllowed: false` still listens on every
address). So the test process moves itself into a fresh network namespace before the first test runs
(`enter_private_network`: `unshare(CLONE_NEWNET)` through libc, then loopback up through an ioctl, no
`ip` binary needed), and starts each Orthanc as a plain child process there: the server, the tests'
clients (requests, pynetdicom, the app's worker threads, `pneumoviewer` subprocesses) all share that
namespace's 127.0.0.1 and no other interface exists. Namespaces are per thread, and a thread inherits
its creator's: entering it before any test runs (pytest_collection_finish, below, only when PACS tests
are collected) puts every later thread there. Where namespaces are not permitted (no root, no
CAP_SYS_ADMIN) the PACS tests skip with the reason; a user without root can run them with
`unshare -rn .venv/bin/python -m pytest tests/test_pacs*.py`.

Each `OrthancServer` gets a throw-away configuration and storage folder (under pytest's tmp path) and
is stopped (or killed, for the failure tests) by its test.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

ORTHANC = "Orthanc"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
CLONE_NEWNET = 0x40000000
USER, PASSWORD = "reader", "not-a-real-password"
AE_TITLE = "TESTPACS"

_network_problem: str | None = "the PACS tests did not enter a private network namespace"


def enter_private_network() -> str | None:
    """Move this thread (and every thread and process it starts later) into a new network namespace
    with loopback up. Returns None, or why it cannot be done here."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        return (f"network namespaces are not permitted here (unshare(CLONE_NEWNET): {os.strerror(code)}); "
                "run as root, or under `unshare -rn`")
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(probe, siocgifflags, request))[1]
        fcntl.ioctl(probe, siocsifflags, struct.pack("16sH", b"lo", flags | iff_up))
    return None


def pytest_collection_finish(session: pytest.Session) -> None:
    global _network_problem
    if any(Path(str(item.fspath)).name.startswith(("test_pacs", "test_ui_pacs")) for item in session.items):
        _network_problem = enter_private_network()


def require_orthanc() -> None:
    """Skip (with the reason) where the tests cannot run a private Orthanc."""
    if _network_problem is not None:
        pytest.skip(_network_problem)
    missing = [name for name, present in ((ORTHANC, shutil.which(ORTHANC)), (str(DICOMWEB_PLUGIN),
                                          DICOMWEB_PLUGIN.exists())) if not present]
    if missing:
        pytest.skip(f"Orthanc is not installed ({', '.join(missing)}): apt-get install orthanc orthanc-dicomweb "
                    "(scripts/install.sh does it as root)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class OrthancServer:
    """One Orthanc with DICOMweb, basic auth (USER/PASSWORD) and the DICOM port, in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.http_port, self.dicom_port = free_port(), free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def start(self, timeout_s: float = 30.0) -> OrthancServer:
        storage = self.folder / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "PneumoViewer test PACS", "StorageDirectory": str(storage), "IndexDirectory": str(storage),
            "StorageCompression": False, "Plugins": [str(DICOMWEB_PLUGIN)],
            "HttpPort": self.http_port, "DicomPort": self.dicom_port, "DicomAet": AE_TITLE,
            "RemoteAccessAllowed": True,  # reachable from this namespace's loopback only: nothing else exists
            "AuthenticationEnabled": True, "RegisteredUsers": {USER: PASSWORD},
            "DicomCheckCalledAet": True, "DicomAlwaysAllowStore": True, "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowGet": True, "DicomAlwaysAllowEcho": True,
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }
        config_path = self.folder / "orthanc.json"
        config_path.write_text(json.dumps(config, indent=1), encoding="utf-8")
        log = open(self.folder / "orthanc.log", "ab")  # noqa: SIM115 - the child writes it for its life
        self.process = subprocess.Popen([ORTHANC, str(config_path)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout_s
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = (self.folder / "orthanc.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"Orthanc did not start:\n{tail}")
            time.sleep(0.1)
        return self

    def _answers(self) -> bool:
        for port in (self.http_port, self.dicom_port):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    pass
            except OSError:
                return False
        return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """Gone at once, connections dropped mid-way (SIGKILL), as a crashed server."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def upload(self, paths: list[Path]) -> None:
        """Put files on the server through its REST API (what a modality's C-STORE would do)."""
        import requests

        with requests.Session() as session:
            session.auth = (USER, PASSWORD)
            for path in paths:
                answer = session.post(f"{self.url}/instances", data=Path(path).read_bytes(), timeout=30)
                answer.raise_for_status()

    def instance_count(self) -> int:
        import requests

        answer = requests.get(f"{self.url}/statistics", auth=(USER, PASSWORD), timeout=10)
        answer.raise_for_status()
        return int(answer.json()["CountInstances"])
