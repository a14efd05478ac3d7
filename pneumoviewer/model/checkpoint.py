"""Model files: weights in safetensors with a JSON model card beside them; nothing is ever unpickled.

A checkpoint named `default` is the pair `default.safetensors` (tensors only, fp16 or fp32) and
`default.json` (the `ModelCard` of `model.card`: architecture, input normalisation, inference settings,
how it was trained and how well it does). A PyTorch `.pth`/`.pt` file is accepted only through
`torch.load(weights_only=True)`, which refuses arbitrary objects, and still needs the JSON card.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from pneumoviewer.io.atomic import atomic_write_bytes
from pneumoviewer.model.card import CheckpointError, ModelCard, load_card, save_card
from pneumoviewer.model.identity import checkpoint_paths
from pneumoviewer.model.network import PneumothoraxNet, build_network


def save_checkpoint(path: Path | str, model: nn.Module, card: ModelCard, half: bool = True) -> tuple[Path, Path]:
    """Write `<path>.safetensors` (fp16 when `half`) and `<path>.json`, each atomically.

    Returns the two paths. A crash mid-write leaves any previous checkpoint intact.
    """
    from safetensors.torch import save

    weights_path, card_path = checkpoint_paths(path)
    if weights_path.suffix != ".safetensors":
        raise CheckpointError(weights_path, "checkpoints are written as .safetensors only")
    tensors = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu")
        if half and tensor.is_floating_point():
            tensor = tensor.half()
        tensors[name] = tensor.contiguous()
    atomic_write_bytes(weights_path, save(tensors, metadata={"format": "pt"}))
    return weights_path, save_card(card_path, card)


def load_checkpoint(path: Path | str, device: torch.device | str | None = None) -> tuple[PneumothoraxNet, ModelCard]:
    """The network (float32, eval mode, on `device`, default CPU) and its card.

    Raises `CheckpointError` for a missing, truncated, corrupt or mismatched file.
    """
    weights_path, _ = checkpoint_paths(path)
    if not weights_path.is_file():
        raise CheckpointError(weights_path, "model file not found")
    card = load_card(path)
    state = _read_state_dict(weights_path)
    try:
        model = build_network(card.network)
    except Exception as err:  # noqa: BLE001 - an unknown encoder name etc. in the card: any error means refuse it
        raise CheckpointError(weights_path, f"cannot build the network the card describes ({err})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or mismatched:
        details = [f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                   for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched))
                   if keys]
        raise CheckpointError(
            weights_path, "weights do not match the architecture in the card (" + "; ".join(details) + ")"
        )
    state = {k: v.to(expected[k].dtype) for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    model.eval()
    return model.to(torch.device(device) if device is not None else torch.device("cpu")), card


def _read_state_dict(weights_path: Path) -> dict[str, torch.Tensor]:
    if weights_path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(weights_path))
        except Exception as err:  # noqa: BLE001 - SafetensorError, OSError...: truncated or not a safetensors file
            raise CheckpointError(weights_path, f"model file is damaged or not a safetensors file ({err})") from None
    try:
        with warnings.catch_warnings():  # torch's note on a foreign pickle protocol: noise beside the refusal
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            loaded = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - UnpicklingError and more for anything beyond plain tensors
        raise CheckpointError(
            weights_path, f"model file refused: not a plain weights file, or damaged ({type(err).__name__})"
        ) from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise CheckpointError(weights_path, "model file does not hold a dictionary of weights")
    return loaded
