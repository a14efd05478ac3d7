"""The network stage on ONNX Runtime: ~1.4x faster than PyTorch (even channels-last) on our CPUs.

The PyTorch module is exported once per model file and input size to the user's cache folder and
reused afterwards. The export (seconds of Python tracing, single calls holding the GIL for 0.3 s)
runs in a spawned child process, so the app's window is not held up by it; where no child can start
(inside a daemonic worker) or the child fails, it runs here.
Grad-CAM still uses the PyTorch module, which has gradients. If ONNX Runtime is missing or the
export fails, `try_onnx_network` returns None and the caller keeps PyTorch: slower, same results.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import multiprocessing
import warnings
from pathlib import Path

import numpy as np
import platformdirs
import torch
from torch import nn

from pneumoviewer.io.atomic import atomic_write_bytes
from pneumoviewer.paths import APP_NAME

_LOG = logging.getLogger(__name__)
_OPSET = 17


class OnnxNetwork:
    """Callable like the network: (B, C, S, S) tensor -> (mask_logits (B, 1, S, S), presence_logits (B,))."""

    def __init__(self, model_file: Path, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle ORT threads spin by default, stealing the core that decoding, the UI or training needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])

    def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feed = {"image": np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=np.float32)}
        mask_logits, presence_logits = self.session.run(None, feed)
        return torch.from_numpy(mask_logits), torch.from_numpy(presence_logits).reshape(-1)


def onnx_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / "onnx"


def try_onnx_network(
    network: nn.Module, weights_file: Path, card_network: dict, input_shape: tuple[int, int, int]
) -> OnnxNetwork | None:
    """An ONNX Runtime session for `network` on (C, S, S) inputs, exported on first use.

    None (and a logged warning) when ONNX Runtime is not installed or the export fails.
    """
    try:
        import onnxruntime  # noqa: F401  (imported here only to know whether it is installed)
    except ImportError:
        return None
    try:
        model_file = onnx_cache_dir() / f"{_cache_key(weights_file, card_network, input_shape)}.onnx"
        if not model_file.is_file():
            _export_in_a_child(weights_file, input_shape, model_file)
        if not model_file.is_file():
            _export(network, input_shape, model_file)
        return OnnxNetwork(model_file, threads=torch.get_num_threads())
    except Exception as error:  # noqa: BLE001 (exporter/runtime errors have many types; PyTorch still works)
        _LOG.warning("ONNX Runtime not used for %s (%s: %s); using PyTorch", weights_file, type(error).__name__, error)
        return None


def _cache_key(weights_file: Path, card_network: dict, input_shape: tuple[int, int, int]) -> str:
    digest = hashlib.sha256()
    with open(weights_file, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    digest.update(json.dumps([card_network, input_shape, torch.__version__, _OPSET], sort_keys=True).encode())
    return digest.hexdigest()[:32]


def _export_in_a_child(weights_file: Path, input_shape: tuple[int, int, int], model_file: Path) -> None:
    """Export `weights_file`'s network in a spawned process, waiting for it (GIL released); a failure is
    logged and leaves `model_file` absent, for the caller to export here."""
    if multiprocessing.current_process().daemon:  # a daemonic process may not start children
        return
    child = multiprocessing.get_context("spawn").Process(
        target=_export_checkpoint, args=(weights_file, input_shape, model_file), daemon=True)
    try:
        child.start()
        child.join()
    except Exception as error:  # noqa: BLE001 (a child that cannot start: no main guard, no resources)
        _LOG.warning("could not export %s to ONNX in a child process (%s); exporting here", weights_file, error)
        return
    if child.exitcode != 0:
        _LOG.warning("the ONNX export of %s in a child process failed (exit code %s); exporting here",
                     weights_file, child.exitcode)


def _export_checkpoint(weights_file: Path, input_shape: tuple[int, int, int], model_file: Path) -> None:
    """The child process's work: the network of `weights_file`, loaded on the CPU, exported."""
    from pneumoviewer.model.checkpoint import load_checkpoint

    network, _card = load_checkpoint(weights_file, device="cpu")
    _export(network.eval(), input_shape, model_file)


def _export(network: nn.Module, input_shape: tuple[int, int, int], model_file: Path) -> None:
    example = torch.zeros(1, *input_shape)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
        torch.onnx.export(
            # A file-like target is supported at run time; torch's annotation names paths only.
            network.to(memory_format=torch.contiguous_format), (example,), buffer,  # type: ignore[arg-type]
            dynamo=False,
            input_names=["image"], output_names=["mask_logits", "presence_logits"], opset_version=_OPSET,
            dynamic_axes={"image": {0: "batch"}, "mask_logits": {0: "batch"}, "presence_logits": {0: "batch"}},
        )
    model_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(model_file, buffer.getvalue())  # concurrent exporters race harmlessly: same bytes
