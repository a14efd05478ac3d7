"""Round trips through a real Orthanc (tests/orthanc_server.py): upload real SIIM DICOMs, query and pull
them over DICOMweb and DIMSE, run the bundled model through `pneumoviewer predict`, push the SEGs and
overlays back, query them back, pull them again and compare the masks pixel for pixel."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from orthanc_server import AE_TITLE, PASSWORD, USER, OrthancServer, require_orthanc

from pneumoviewer.cli import main
from pneumoviewer.io.annotations import read_annotation_masks
from pneumoviewer.io.dicom import load_dicom
from pneumoviewer.io.dicom_seg import open_seg, read_seg
from pneumoviewer.io.folder_scan import scan_folder
from pneumoviewer.pacs.connection import connect
from pneumoviewer.pacs.nodes import PacsNode, load_nodes, save_nodes
from pneumoviewer.pacs.push import PushStatus, push_objects
from pneumoviewer.pacs.retrieve import retrieve_studies
from pneumoviewer.pacs.studies import StudyQuery
from pneumoviewer.review.case import ReviewStatus
from pneumoviewer.review.export import export_dicom
from pneumoviewer.review.opening import open_studies

IMAGES = 3


@pytest.fixture(scope="module")
def labels(siim_labels_csv: Path) -> dict[str, np.ndarray]:
    """Two images with a pneumothorax and one without, as the reader's masks."""
    masks = read_annotation_masks(siim_labels_csv)
    positive = [image_id for image_id, mask in masks.items() if mask.any()][:2]
    negative = [image_id for image_id, mask in masks.items() if not mask.any()][:1]
    return {image_id: masks[image_id] for image_id in positive + negative}


@pytest.fixture(scope="module")
def sources(siim_dir: Path, labels: dict[str, np.ndarray]) -> list[Path]:
    return sorted(next((siim_dir / "dicom-images").rglob(f"{image_id}.dcm")) for image_id in labels)


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory, sources: list[Path]) -> Iterator[OrthancServer]:
    require_orthanc()
    server = OrthancServer(tmp_path_factory.mktemp("orthanc")).start()
    server.upload(sources)
    yield server
    server.stop()


def dicomweb_node(server: OrthancServer, password: str = PASSWORD) -> PacsNode:
    return PacsNode("test-web", "dicomweb", url=server.dicomweb_url, username=USER, password=password)


def dimse_node(server: OrthancServer, ae_title: str = AE_TITLE) -> PacsNode:
    return PacsNode("test-dimse", "dimse", ae_title=ae_title, host="127.0.0.1", port=server.dicom_port)


def both_nodes(server: OrthancServer) -> list[PacsNode]:
    return [dicomweb_node(server), dimse_node(server)]


def test_queries_match_date_modality_patient_and_accession(orthanc: OrthancServer, sources: list[Path]) -> None:
    first = pydicom.dcmread(sources[0], stop_before_pixels=True)
    expected = {str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID) for path in sources}
    for node in both_nodes(orthanc):
        with connect(node) as connection:
            everything = connection.query(StudyQuery())
            assert {study.study_uid for study in everything} == expected, node.kind
            assert all(study.modalities == ("CR",) and study.instances == 1 for study in everything)
            one = connection.query(StudyQuery(patient_id=str(first.PatientID)))
            assert [study.study_uid for study in one] == [str(first.StudyInstanceUID)]
            assert one[0].patient_name == str(first.PatientName)
            assert connection.query(StudyQuery(modalities=("DX",))) == []
            day = str(first.StudyDate)
            assert len(connection.query(StudyQuery(date_from=day, date_to=day))) == IMAGES
            assert connection.query(StudyQuery(date_from="20200101")) == []
            assert connection.query(StudyQuery(accession_number="NO-SUCH-ACCESS")) == []


def test_pulled_studies_hold_the_same_images_over_both_protocols(orthanc: OrthancServer, sources: list[Path],
                                                                  tmp_path: Path) -> None:
    originals = {path.stem: load_dicom(path).raw for path in sources}
    for node in both_nodes(orthanc):
        cache = tmp_path / node.kind
        with connect(node) as connection:
            studies = [study.study_uid for study in connection.query(StudyQuery())]
        ticks: list[tuple[int, int]] = []
        retrieved = retrieve_studies(node, studies, cache, progress=lambda done, total: ticks.append((done, total)))
        assert ticks[-1] == (IMAGES, IMAGES) and all(study.fetched == 1 for study in retrieved)
        scan = scan_folder(cache)
        assert scan.unreadable == [] and len(scan.images) == IMAGES
        for header in scan.images:
            np.testing.assert_array_equal(load_dicom(header.path).raw, originals[header.sop_instance_uid])
        again = retrieve_studies(node, studies, cache)  # complete in the cache: nothing fetched twice
        assert [study.fetched for study in again] == [0] * IMAGES
        assert not (cache / ".incoming").exists() or not any((cache / ".incoming").iterdir())


@pytest.mark.usefixtures("private_onnx_cache")
def test_ai_results_go_back_and_come_back_pixel_for_pixel(orthanc: OrthancServer, tmp_path: Path,
                                                          labels: dict[str, np.ndarray],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    monkeypatch.setenv("PNEUMOVIEWER_PACS_PASSWORD", PASSWORD)
    web = ["--url", orthanc.dicomweb_url, "--user", USER]
    dimse = ["--dimse", f"{AE_TITLE}@127.0.0.1:{orthanc.dicom_port}"]
    cache = tmp_path / "cache"
    assert main(["pacs", "pull", *web, "--matching", "--cache", str(cache)]) == 0

    # The bundled model through the normal predict path, on the pulled folder as on any folder: AI SEGs.
    ai_segs, predictions = tmp_path / "ai-segs", tmp_path / "predictions.csv"
    assert main(["predict", str(cache), "--out", str(predictions), "--seg-dir", str(ai_segs)]) == 0
    ai_masks = read_annotation_masks(predictions)
    assert set(ai_masks) == set(labels)
    # The reader's review of the same folder (masks drawn as the labels), exported as SEGs and overlays.
    opened = open_studies([cache])
    for case in opened.session.cases:
        case.mask = labels[case.image_id].copy()
        opened.session.set_status(case.image_id, ReviewStatus.CORRECTED)
    reader_segs, overlays = tmp_path / "reader-segs", tmp_path / "overlays"
    export_dicom(opened.session.cases, reader_segs, overlays)
    opened.session.close()

    assert main(["pacs", "push", *web, str(ai_segs)]) == 0  # STOW-RS
    assert main(["pacs", "push", *dimse, str(reader_segs), str(overlays)]) == 0  # C-STORE
    assert orthanc.instance_count() == 4 * IMAGES

    for node in both_nodes(orthanc):  # queried back: each study holds its image, two SEGs and an overlay
        with connect(node) as connection:
            for study in connection.query(StudyQuery()):
                modalities = sorted(item.modality for item in connection.instances(study.study_uid))
                assert modalities == ["CR", "OT", "SEG", "SEG"], node.kind
    back = tmp_path / "back"
    for node in both_nodes(orthanc):
        with connect(node) as connection:
            uids = [study.study_uid for study in connection.query(StudyQuery())]
            overlay = next(item for item in connection.instances(uids[0]) if item.modality == "OT")
            connection.fetch(overlay, tmp_path / f"overlay-{node.kind}.dcm")
        burned_in = pydicom.dcmread(tmp_path / f"overlay-{node.kind}.dcm")
        assert burned_in.BurnedInAnnotation == "YES" and burned_in.SamplesPerPixel == 3
        assert burned_in.SourceImageSequence[0].ReferencedSOPInstanceUID in labels
        retrieved = retrieve_studies(node, uids, back / node.kind)
        assert [study.skipped for study in retrieved] == [1] * IMAGES  # the overlays stay on the server
        pulled = scan_folder(back / node.kind)
        assert pulled.unreadable == [] and len(pulled.images) == IMAGES and len(pulled.segmentations) == 2 * IMAGES
        for seg_path in pulled.segmentations:
            read_seg(seg_path)  # highdicom re-reads it
            seg = open_seg(seg_path)
            (source_uid,) = seg.source_uids
            expected = ai_masks[source_uid] if seg.by_our_ai else labels[source_uid]
            np.testing.assert_array_equal(seg.mask(source_uid), expected)
        # The pulled folder opens with the reader's SEGs as the cases' masks (a reader's SEG wins over the AI's).
        reopened = open_studies([back / node.kind], data_dir=tmp_path / node.kind)
        for image_id, mask in labels.items():
            np.testing.assert_array_equal(reopened.session.case(image_id).export_mask(), mask)
        reopened.session.close()


def test_push_sends_each_object_once_and_retries_failures(orthanc: OrthancServer, tmp_path: Path,
                                                          sources: list[Path]) -> None:
    from pneumoviewer.io.dicom_seg import write_seg

    folder = tmp_path / "outbox"
    folder.mkdir()
    for source in sources[:2]:
        write_seg(folder / f"{source.stem}.seg.dcm", source, np.zeros((1024, 1024), bool), None)
    damaged = tmp_path / "damaged.dcm"
    damaged.write_bytes(b"not DICOM at all")
    before = orthanc.instance_count()
    node = dimse_node(orthanc)

    first = push_objects(node, [folder, damaged], data_dir=tmp_path)
    assert [result.status for result in first.results] == [PushStatus.SENT, PushStatus.SENT, PushStatus.FAILED]
    assert "not a DICOM object" in first.failed[0].reason
    assert orthanc.instance_count() == before + 2
    second = push_objects(node, [folder, damaged], data_dir=tmp_path)
    assert [result.status for result in second.results] == [PushStatus.ALREADY_SENT] * 2 + [PushStatus.FAILED]
    assert orthanc.instance_count() == before + 2
    # Another node (the same server over DICOMweb) has its own record; the server keeps one copy per UID.
    third = push_objects(dicomweb_node(orthanc), [folder], data_dir=tmp_path)
    assert {result.status for result in third.results} <= {PushStatus.SENT, PushStatus.ALREADY_THERE}
    assert orthanc.instance_count() == before + 2
    # What failed is tried again on the next push, and goes once it can.
    shutil.copy(sources[2], damaged)
    fourth = push_objects(node, [folder, damaged], data_dir=tmp_path)
    assert [result.status for result in fourth.results] == [PushStatus.ALREADY_SENT] * 2 + [PushStatus.SENT]


def test_nodes_are_kept_per_user_without_showing_the_password(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    node = PacsNode("ward", "dicomweb", url="http://pacs.example:8042/dicom-web", username="dr", password="hunter2")
    path = save_nodes([node], tmp_path)
    assert path.stat().st_mode & 0o077 == 0
    assert load_nodes(tmp_path) == [node]
    assert "hunter2" not in repr(node) and "hunter2" not in node.describe()
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("PNEUMOVIEWER_PACS_PASSWORD", "hunter2")
    assert main(["pacs", "add", "ward", "--url", node.url, "--user", "dr"]) == 0
    assert main(["pacs", "nodes"]) == 0
    output = capsys.readouterr()
    assert "ward: dicomweb http://pacs.example:8042/dicom-web, user dr" in output.out
    assert "hunter2" not in output.out + output.err
