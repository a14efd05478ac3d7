"""Shared fixtures. Tests run offscreen, without a GPU or network, on the real data beside the repo."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# The PACS tests' private network namespace and Orthanc (tests/orthanc_server.py).
pytest_plugins = ["orthanc_server"]

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT.parent / "shared" / "data"
# The verified ImageNet encoder weights beside the data (tests that need them skip without them).
IMAGENET_WEIGHTS = REPO_ROOT.parent / "shared" / "weights" / "mobilenet_v2-imagenet.safetensors"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.fail(f"real test data not found at {DATA_DIR} (see README: ../shared/data)")
    return DATA_DIR


@pytest.fixture(scope="session")
def siim_dir(data_dir: Path) -> Path:
    return data_dir / "siim"


@pytest.fixture(scope="session")
def siim_labels_csv(siim_dir: Path) -> Path:
    return siim_dir / "train-rle.csv"


@pytest.fixture(scope="session")
def edge_dir(data_dir: Path) -> Path:
    return data_dir / "edge"


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random-weights model (64x64 input) with its card, for fast inference tests.

    Its card settings call every case positive with a mask over p >= 0.5, so the mask and lesion
    paths are exercised whatever the random weights predict.
    """
    import torch

    from pneumoviewer.model.card import ModelCard, NetworkConfig
    from pneumoviewer.model.checkpoint import save_checkpoint
    from pneumoviewer.model.network import build_network

    torch.manual_seed(0)
    config = NetworkConfig(input_size=64, decoder_channels=(32, 16, 16, 8, 8))
    settings = {"presence_threshold": 0.0, "presence_min_pixels": 0, "mask_threshold": 0.5}
    weights, _ = save_checkpoint(
        tmp_path_factory.mktemp("model") / "random", build_network(config).eval(),
        ModelCard(network=config, settings=settings), half=False,
    )
    return weights


@pytest.fixture(scope="module")
def private_onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """ONNX exports go to a fresh folder for the module, never to the user's own cache."""
    from pneumoviewer.model import onnx_runtime

    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("onnx-cache")
        patch.setattr(onnx_runtime, "onnx_cache_dir", lambda: folder)
        yield folder


@pytest.fixture(scope="session")
def small_labels(siim_labels_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A labels file with the first 4 positive and 4 negative SIIM images, rows as the challenge wrote them."""
    path = tmp_path_factory.mktemp("labels") / "train-rle.csv"
    write_labels_subset(siim_labels_csv, path, positives=4, negatives=4)
    return path


def write_labels_subset(source: Path, target: Path, positives: int, negatives: int) -> list[str]:
    """The rows of the first `positives` positive and `negatives` negative images of `source`, written to
    `target` as the challenge wrote them; returns the chosen image ids."""
    from pneumoviewer.io.annotations import read_annotation_rows

    rows = read_annotation_rows(source)
    chosen = (list(dict.fromkeys(i for i, encoded in rows if encoded != "-1"))[:positives]
              + list(dict.fromkeys(i for i, encoded in rows if encoded == "-1"))[:negatives])
    wanted = set(chosen)
    target.write_text("ImageId, EncodedPixels\n" + "".join(f"{i}, {e}\n" for i, e in rows if i in wanted))
    return chosen
