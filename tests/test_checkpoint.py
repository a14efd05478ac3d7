"""Checkpoints round-trip, and bad model files fail with a clear error and without running code."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from pneumoviewer.model.card import CheckpointError, ModelCard, NetworkConfig
from pneumoviewer.model.checkpoint import load_checkpoint, save_checkpoint
from pneumoviewer.model.network import build_network

SMALL = NetworkConfig(input_size=64, decoder_channels=(32, 16, 16, 8, 8))


def _saved(tmp_path: Path, half: bool = True) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    model = build_network(SMALL).eval()
    card = ModelCard(network=SMALL, settings={"mask_threshold": 0.3}, metrics={"auc": 0.9})
    save_checkpoint(tmp_path / "model", model, card, half=half)
    return tmp_path / "model", model


def test_round_trip_keeps_weights_card_and_outputs(tmp_path: Path) -> None:
    path, model = _saved(tmp_path, half=False)
    loaded, card = load_checkpoint(path)
    assert card.network == SMALL
    assert card.settings == {"mask_threshold": 0.3}
    assert card.metrics == {"auc": 0.9}
    assert not loaded.training
    image = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        for ours, theirs in zip(loaded(image), model(image)):
            assert torch.allclose(ours, theirs)


def test_half_precision_storage_loads_as_float32(tmp_path: Path) -> None:
    path, model = _saved(tmp_path, half=True)
    loaded, _ = load_checkpoint(path.with_suffix(".safetensors"))
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    full = dict(model.named_parameters())
    for name, parameter in loaded.named_parameters():
        assert torch.allclose(parameter, full[name], atol=1e-2, rtol=1e-3)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found") as caught:
        load_checkpoint(tmp_path / "absent.safetensors")
    assert caught.value.path == tmp_path / "absent.safetensors"


def test_truncated_safetensors_is_reported_as_damaged(tmp_path: Path) -> None:
    path, _ = _saved(tmp_path)
    weights = path.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="damaged") as caught:
        load_checkpoint(weights)
    assert str(weights) in str(caught.value)


def test_missing_card_is_reported(tmp_path: Path) -> None:
    path, _ = _saved(tmp_path)
    path.with_suffix(".json").unlink()
    with pytest.raises(CheckpointError, match="model card"):
        load_checkpoint(path)


def test_corrupt_card_is_reported(tmp_path: Path) -> None:
    path, _ = _saved(tmp_path)
    path.with_suffix(".json").write_text("{ not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(path)


def test_weights_of_another_architecture_are_refused(tmp_path: Path) -> None:
    path, _ = _saved(tmp_path)
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["network"]["decoder_channels"] = [64, 32, 16, 8, 8]
    card_path.write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="do not match the architecture"):
        load_checkpoint(path)


class _CreatesMarkerWhenUnpickled:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_malicious_pickle_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    weights = tmp_path / "evil.pth"
    torch.save({"state_dict": _CreatesMarkerWhenUnpickled(marker)}, weights)
    # Sanity: plain unpickling really would run the payload.
    assert not marker.exists()
    (tmp_path / "evil.json").write_text(json.dumps(ModelCard(network=SMALL).to_dict()))
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(weights)
    assert not marker.exists()
    pickle.loads(pickle.dumps(_CreatesMarkerWhenUnpickled(marker)))
    assert marker.exists()


def test_plain_pth_state_dict_is_accepted(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_network(SMALL).eval()
    torch.save(model.state_dict(), tmp_path / "plain.pth")
    (tmp_path / "plain.json").write_text(json.dumps(ModelCard(network=SMALL).to_dict()))
    loaded, _ = load_checkpoint(tmp_path / "plain.pth")
    image = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(image)[0], model(image)[0])
