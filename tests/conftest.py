"""Shared fixtures. Tests run offscreen, without a GPU or network, on the real data beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT.parent / "shared" / "data"


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
