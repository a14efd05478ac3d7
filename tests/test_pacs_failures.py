"""What a PACS really does wrong, against a real Orthanc: down, wrong port, login or AE title refused,
no answer, killed in the middle of a retrieval; each a clear message naming the node, and a half-retrieved
study never shown as complete (resumed on the next pull)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from orthanc_server import AE_TITLE, PASSWORD, USER, OrthancServer, free_port, require_orthanc
from pydicom.uid import generate_uid

from pneumoviewer.cli import main
from pneumoviewer.io.folder_scan import scan_folder
from pneumoviewer.pacs.connection import connect
from pneumoviewer.pacs.nodes import PacsError, PacsNode
from pneumoviewer.pacs.push import PushStatus, push_objects
from pneumoviewer.pacs.retrieve import INCOMING, discard_incoming, incoming_studies, retrieve_studies
from pneumoviewer.pacs.studies import StudyQuery

STUDY_SIZE = 6  # one real SIIM image and five copies of it as further series of its study


@pytest.fixture(scope="module")
def study_files(siim_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A study of several instances (SIIM studies hold one): the real image, and copies with their own UIDs."""
    source = sorted((siim_dir / "dicom-images").rglob("*.dcm"))[0]
    folder = tmp_path_factory.mktemp("study")
    files = [source]
    for number in range(1, STUDY_SIZE):
        dataset = pydicom.dcmread(source)
        dataset.SeriesInstanceUID = generate_uid(entropy_srcs=[str(source), "series", str(number)])
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid(
            entropy_srcs=[str(source), "instance", str(number)])
        dataset.SeriesNumber = number + 1
        files.append(folder / f"copy-{number}.dcm")
        dataset.save_as(files[-1])
    return files


@pytest.fixture
def orthanc(tmp_path: Path, study_files: list[Path]) -> Iterator[OrthancServer]:
    require_orthanc()
    server = OrthancServer(tmp_path / "orthanc").start()
    server.upload(study_files)
    yield server
    server.stop()


def web(server: OrthancServer, **changes: object) -> PacsNode:
    values: dict = {"url": server.dicomweb_url, "username": USER, "password": PASSWORD, **changes}
    return PacsNode("ward-pacs", "dicomweb", **values)


def dimse(server: OrthancServer, **changes: object) -> PacsNode:
    values: dict = {"ae_title": AE_TITLE, "host": "127.0.0.1", "port": server.dicom_port, **changes}
    return PacsNode("ward-pacs", "dimse", **values)


def query_error(node: PacsNode) -> str:
    with pytest.raises(PacsError) as caught, connect(node) as connection:
        connection.query(StudyQuery())
    message = str(caught.value)
    assert message.startswith(f"PACS ward-pacs ({node.address}): the study query: "), message
    return message


def test_server_down_and_wrong_port(orthanc: OrthancServer, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    nobody = free_port()
    for node in (web(orthanc, url=f"http://127.0.0.1:{nobody}/dicom-web"), dimse(orthanc, port=nobody)):
        assert "nothing answers at this address (the server is down, or the host or port is wrong)" in query_error(
            node)
    # The other protocol's port: a DICOM port does not speak HTTP, the HTTP port does not speak DICOM.
    assert "without an HTTP answer (is this its DICOMweb port?" in query_error(
        web(orthanc, url=f"http://127.0.0.1:{orthanc.dicom_port}/dicom-web", timeout_s=5))
    assert "no DICOM association could be made" in query_error(dimse(orthanc, port=orthanc.http_port, timeout_s=5))
    orthanc.stop()
    assert "nothing answers" in query_error(web(orthanc))
    monkeypatch.setenv("PNEUMOVIEWER_PACS_PASSWORD", PASSWORD)
    assert main(["pacs", "query", "--url", orthanc.dicomweb_url, "--user", USER]) == 1
    assert f"pneumoviewer: PACS command line ({orthanc.dicomweb_url}): the study query: nothing answers" in \
        capsys.readouterr().err


def test_refused_login_and_association(orthanc: OrthancServer, tmp_path: Path, study_files: list[Path]) -> None:
    assert "refused the user name or password (HTTP 401)" in query_error(web(orthanc, password="wrong"))
    assert "(HTTP 401)" in query_error(web(orthanc, username="", password=""))
    assert "the server refused the association: called ae title not recognised" in query_error(
        dimse(orthanc, ae_title="NOT-ITS-AE"))
    # A push the server refuses as a whole stops at the first object; every object is retried next time.
    report = push_objects(web(orthanc, password="wrong"), study_files[:2], data_dir=tmp_path)
    assert report.stopped_by is not None and "HTTP 401" in str(report.stopped_by)
    assert [result.status for result in report.results] == [PushStatus.FAILED] * 2
    again = push_objects(web(orthanc), study_files[:2], data_dir=tmp_path)
    assert {result.status for result in again.results} <= {PushStatus.SENT, PushStatus.ALREADY_THERE}


def test_not_found_and_no_answer(orthanc: OrthancServer, tmp_path: Path) -> None:
    for node in (web(orthanc), dimse(orthanc)):
        with pytest.raises(PacsError, match="study 1.2.3.4 has no instances on the server"):
            retrieve_studies(node, ["1.2.3.4"], tmp_path / "cache")
    assert "not found on the server (HTTP 404" in query_error(web(orthanc, url=f"{orthanc.url}/no-dicom-web"))
    with socket.socket() as silent:  # accepts connections and never answers: a hung server
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        assert "no answer within 1 s" in query_error(web(orthanc, url=f"http://127.0.0.1:{port}", timeout_s=1))
        assert "no DICOM association could be made (no answer in 1 s" in query_error(
            dimse(orthanc, port=port, timeout_s=1))


@pytest.mark.parametrize("kind", ["dicomweb", "dimse"])
def test_a_server_killed_mid_retrieval_leaves_no_half_study(orthanc: OrthancServer, tmp_path: Path,
                                                            kind: str) -> None:
    node = web(orthanc) if kind == "dicomweb" else dimse(orthanc)
    cache = tmp_path / "cache"
    with connect(node) as connection:
        (study,) = connection.query(StudyQuery())

    def kill_after_two(done: int, _total: int) -> None:
        if done == 2:
            orthanc.kill()

    with pytest.raises(PacsError) as caught:
        retrieve_studies(node, [study.study_uid], cache, progress=kill_after_two)
    assert str(caught.value).startswith("PACS ward-pacs") and "retrieval of instance" in str(caught.value)
    assert not (cache / study.study_uid).exists()  # never shown as complete
    assert scan_folder(cache).images == []  # opening the cache lists nothing of it
    assert incoming_studies(cache) == [study.study_uid]
    assert len(list((cache / INCOMING / study.study_uid).iterdir())) == 2

    orthanc.start()  # the same storage: the server is back
    (resumed,) = retrieve_studies(node, [study.study_uid], cache)
    assert (resumed.instances, resumed.fetched) == (STUDY_SIZE, STUDY_SIZE - 2)
    assert len(scan_folder(cache).images) == STUDY_SIZE and incoming_studies(cache) == []


def test_a_stopped_retrieval_can_be_discarded(orthanc: OrthancServer, tmp_path: Path) -> None:
    from pneumoviewer.errors import Cancelled

    node = dimse(orthanc)
    cache = tmp_path / "cache"
    with connect(node) as connection:
        (study,) = connection.query(StudyQuery())
    fetched: list[int] = []
    with pytest.raises(Cancelled):
        retrieve_studies(node, [study.study_uid], cache, progress=lambda done, _total: fetched.append(done),
                         cancel=lambda: len(fetched) >= 3)
    assert incoming_studies(cache) == [study.study_uid]
    assert main(["pacs", "pull", "--dimse", f"{AE_TITLE}@127.0.0.1:{orthanc.dicom_port}", "--cache", str(cache),
                 "--discard-incoming"]) == 0
    assert incoming_studies(cache) == [] and not (cache / study.study_uid).exists()
    assert discard_incoming(cache) == []
