"""The site twin: SIIM films re-rendered as another site's 12-bit DX files, still under their labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from script_loader import load_script  # tests/script_loader.py

from pneumoviewer.io.annotations import read_annotation_rows
from pneumoviewer.io.dicom import load_dicom, read_header
from pneumoviewer.io.folder_scan import scan_folder
from pneumoviewer.io.images import load_radiograph
from pneumoviewer.io.rle import decode_rows
from pneumoviewer.training.site_render import SiteProfile, render_site


@pytest.fixture(scope="module")
def source(siim_dir: Path, siim_labels_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Three SIIM DICOMs (one with a pneumothorax) in the challenge's folder layout, and their label rows."""
    rows: dict[str, list[str]] = {}
    for image_id, encoded in read_annotation_rows(siim_labels_csv):
        rows.setdefault(image_id, []).append(encoded)
    files = {path.stem: path for path in sorted((siim_dir / "dicom-images").rglob("*.dcm"))}
    positive = next(image_id for image_id in sorted(rows) if rows[image_id] != ["-1"] and image_id in files)
    negatives = [image_id for image_id in sorted(rows) if rows[image_id] == ["-1"] and image_id in files][:2]
    folder = tmp_path_factory.mktemp("siim")
    for image_id in [positive, *negatives]:
        target = folder / files[image_id].relative_to(siim_dir)
        target.parent.mkdir(parents=True)
        target.write_bytes(files[image_id].read_bytes())
    return folder, {image_id: rows[image_id] for image_id in [positive, *negatives]}


def test_twin_is_a_12_bit_dx_file_under_the_same_uid_and_labels(source: tuple[Path, dict], tmp_path: Path) -> None:
    folder, rows = source
    out = tmp_path / "twin"
    assert load_script("make_site_twin").main([str(folder), str(out)]) == 0
    scan = scan_folder(out)  # the app's folder reader
    assert not scan.unreadable and {header.sop_instance_uid for header in scan.images} == set(rows)
    for header in scan.images:
        original_path = folder / header.path.relative_to(out)
        original = load_dicom(original_path)
        twin = load_radiograph(header.path)  # the app's loader
        assert header.modality == "DX" and header.bits_stored == 12 and header.photometric == "MONOCHROME2"
        assert header.pixel_spacing_mm == original.metadata.pixel_spacing_mm  # from ImagerPixelSpacing
        assert header.study_instance_uid == original.metadata.study_instance_uid
        assert twin.raw.max() <= 4095 and twin.raw.max() > 255  # 12-bit values, not 8-bit ones widened
        assert twin.window != original.window  # the file's own window, from its tags
        truth = decode_rows(rows[header.sop_instance_uid], twin.pixels.shape)  # the labels still apply
        assert truth.shape == (1024, 1024) and truth.any() == (rows[header.sop_instance_uid] != ["-1"])
        # The same anatomy, processed differently: correlated with the original, not equal to it.
        correlation = np.corrcoef(original.pixels.ravel(), twin.pixels.ravel())[0, 1]
        assert 0.6 < correlation < 0.98
        assert np.abs(original.pixels - twin.pixels).mean() > 0.02
    assert json.loads((out / "site-profile.json").read_text())["name"] == "dx-site-b"


def test_twin_is_deterministic_and_ids_can_be_chosen(source: tuple[Path, dict], tmp_path: Path) -> None:
    folder, rows = source
    chosen = sorted(rows)[:2]
    labels = tmp_path / "labels.csv"
    labels.write_text("ImageId, EncodedPixels\n" + "".join(f"{image_id}, -1\n" for image_id in chosen))
    assert load_script("make_site_twin").main([str(folder), str(tmp_path / "a"), "--ids-from", str(labels)]) == 0
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"training": {"split": {"validation_ids": chosen}}}))
    assert load_script("make_site_twin").main([str(folder), str(tmp_path / "b"), "--ids-from", str(card)]) == 0
    first = sorted((tmp_path / "a").rglob("*.dcm"))
    second = sorted((tmp_path / "b").rglob("*.dcm"))
    assert {read_header(path).sop_instance_uid for path in first} == set(chosen)
    assert [path.read_bytes() for path in first] == [path.read_bytes() for path in second]


def test_render_depends_on_the_profile_and_the_image_id_only() -> None:
    generator = np.random.default_rng(0)
    film = (generator.uniform(0, 1, (128, 128)) * 255).astype(np.uint8)
    one = render_site(film, "1.2.3")
    assert np.array_equal(one.stored, render_site(film, "1.2.3").stored)
    assert not np.array_equal(one.stored, render_site(film, "1.2.4").stored)  # other noise
    plain = render_site(film, "1.2.3", SiteProfile(range_compression=0, sigmoid_gain=0, gamma=1, edge_amount=0,
                                                   noise=0, stored_low=0, stored_high=1))
    assert np.abs(plain.stored / 4095 - film / 255).max() < 1e-3  # no processing: the film in 12 bits
    assert one.stored.dtype == np.uint16 and one.stored.max() <= 4095
