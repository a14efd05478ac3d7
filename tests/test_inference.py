from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from pneumoviewer.errors import Cancelled
from pneumoviewer.model import inference, onnx_runtime
from pneumoviewer.model.card import CheckpointError
from pneumoviewer.model.inference import Prediction, Predictor
from pneumoviewer.model.pipeline import InputSpec
from pneumoviewer.model.postprocess import InferenceSettings, postprocess

pytestmark = pytest.mark.usefixtures("private_onnx_cache")  # never the user's own cache


@pytest.fixture(scope="module", params=["auto", "torch"])
def predictor(random_checkpoint: Path, request: pytest.FixtureRequest) -> Predictor:
    predictor = Predictor(random_checkpoint, runtime=request.param)
    assert predictor.runtime == {"auto": "onnxruntime", "torch": "torch"}[request.param]
    return predictor


def _image(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    smooth = 0.5 + 0.3 * np.sin(rows / 9.0) * np.cos(cols / 13.0)
    return np.clip(smooth + 0.05 * rng.standard_normal(shape), 0, 1).astype(np.float32)


def test_prediction_is_at_image_resolution_with_timed_stages(predictor: Predictor) -> None:
    pixels = _image((150, 130))  # not square, not the 64x64 input size
    prediction = predictor.predict(pixels)
    assert isinstance(prediction, Prediction)
    assert prediction.probability.dtype == np.float32 and prediction.probability.shape == (150, 130)
    assert prediction.mask.dtype == bool and prediction.mask.shape == (150, 130)
    assert 0.0 <= prediction.probability.min() <= prediction.probability.max() <= 1.0
    assert 0.0 <= prediction.score <= 1.0
    assert set(prediction.timings) == {"pre", "network", "post"}
    assert all(seconds >= 0 for seconds in prediction.timings.values())
    # The mask and score are exactly the triplet applied to the returned probability, its gate measured
    # on the network's own map, as tuning measures it.
    network_map, _ = predictor.run_network(predictor.preprocess(pixels), predictor.settings.tta)
    result = postprocess(prediction.probability, prediction.presence_probability, predictor.settings,
                         network_map=network_map[0].numpy())
    np.testing.assert_array_equal(prediction.mask, result.mask)
    assert prediction.score == pytest.approx(result.score)
    assert prediction.positive == result.positive


def test_pipeline_matches_the_network_on_input_sized_images(predictor: Predictor) -> None:
    pixels = np.round(_image((64, 64), seed=1) * 255) / 255  # on the 8-bit grid the pipeline snaps inputs to
    with torch.inference_mode():
        spec = InputSpec.from_card(predictor.card)
        normalised = (torch.from_numpy(pixels) - spec.mean) / spec.std
        mask_logits, presence_logits = predictor.network(normalised[None, None])
    prediction = predictor.predict(pixels)
    np.testing.assert_allclose(prediction.probability, torch.sigmoid(mask_logits)[0, 0].numpy(), atol=1e-5)
    assert prediction.presence_probability == pytest.approx(float(torch.sigmoid(presence_logits[0])), abs=1e-5)


def test_downscaling_averages_areas(predictor: Predictor) -> None:
    # A 2x larger image made of 2x2 blocks of the 64x64 one must give the same network input.
    small = _image((64, 64), seed=2)
    large = np.kron(small, np.ones((2, 2), np.float32))
    torch.testing.assert_close(predictor.preprocess(large), predictor.preprocess(small))


def test_flip_tta_averages_the_mirrored_prediction(predictor: Predictor) -> None:
    pixels = _image((64, 64), seed=3)
    tta = InferenceSettings.from_dict({**predictor.settings.to_dict(), "tta": True})
    plain = predictor.predict(pixels).probability
    mirrored = predictor.predict(pixels[:, ::-1].copy()).probability[:, ::-1]
    np.testing.assert_allclose(predictor.predict(pixels, settings=tta).probability, (plain + mirrored) / 2, atol=1e-6)


def test_settings_override_applies_to_one_request_only(predictor: Predictor) -> None:
    pixels = _image((96, 96), seed=4)
    never_positive = InferenceSettings(presence_threshold=1.0, presence_min_pixels=10**6, presence_head_weight=0.0)
    overridden = predictor.predict(pixels, settings=never_positive)
    default = predictor.predict(pixels)
    assert not overridden.mask.any()
    assert default.mask.any()  # the fixture card calls every case positive
    np.testing.assert_array_equal(overridden.probability, default.probability)


def test_cancel_is_honoured_between_stages(predictor: Predictor) -> None:
    calls: list[int] = []

    def cancel_after(stages: int):
        def cancel() -> bool:
            calls.append(1)
            return len(calls) > stages
        return cancel

    for stages in range(3):
        calls.clear()
        with pytest.raises(Cancelled):
            predictor.predict(_image((64, 64)), cancel=cancel_after(stages))
    calls.clear()
    predictor.predict(_image((64, 64)), cancel=cancel_after(99))
    assert len(calls) == 3  # checked before pre-process, before the network, before post-process


def test_batch_matches_single_predictions(predictor: Predictor) -> None:
    images = [_image((64 + 16 * i, 80), seed=i) for i in range(5)]
    batch = predictor.predict_batch(images, batch_size=3)
    assert len(batch) == 5
    for pixels, batched in zip(images, batch):
        single = predictor.predict(pixels)
        np.testing.assert_allclose(batched.probability, single.probability, atol=1e-5)
        assert batched.score == pytest.approx(single.score, abs=1e-5)


def test_bad_pixels_are_rejected(predictor: Predictor) -> None:
    with pytest.raises(ValueError, match="2-D"):
        predictor.predict(np.zeros((3, 64, 64), np.float32))


def test_missing_model_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        Predictor(tmp_path / "absent.safetensors")


def test_predictors_are_cached_by_file_and_mtime(
    random_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "model.safetensors"
    copy.write_bytes(random_checkpoint.read_bytes())
    copy.with_suffix(".json").write_bytes(random_checkpoint.with_suffix(".json").read_bytes())
    monkeypatch.setattr(inference, "default_model_path", lambda: copy)
    first = Predictor.default()
    assert Predictor.default() is first
    assert Predictor.cached(copy) is first
    os.utime(copy.with_suffix(".json"), ns=(0, copy.stat().st_mtime_ns + 10**9))  # the card was edited
    assert Predictor.default() is not first


def test_onnx_export_runs_in_a_child_is_cached_and_a_failed_export_falls_back_to_torch(
    random_checkpoint: Path, private_onnx_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    export_here = onnx_runtime._export
    export_in_a_child = onnx_runtime._export_in_a_child
    monkeypatch.setattr(onnx_runtime, "_export", lambda *args: pytest.fail("exported in this process"))
    assert Predictor(random_checkpoint).runtime == "onnxruntime"  # the spawned child exported it
    exported = list(private_onnx_cache.glob("*.onnx"))
    assert len(exported) == 1
    monkeypatch.setattr(onnx_runtime, "_export_in_a_child", lambda *args: pytest.fail("exported twice"))
    assert Predictor(random_checkpoint).runtime == "onnxruntime"  # reuses the cached export

    # A child that fails (here: its weights file is not a checkpoint) leaves no file and says why.
    (tmp_path / "damaged.safetensors").write_bytes(b"not a checkpoint")
    export_in_a_child(tmp_path / "damaged.safetensors", (1, 64, 64), tmp_path / "damaged.onnx")
    assert not (tmp_path / "damaged.onnx").exists()
    assert "in a child process failed" in caplog.text

    # Then the export runs in this process...
    exported[0].unlink()
    monkeypatch.setattr(onnx_runtime, "_export_in_a_child", lambda *args: None)  # the child left nothing
    monkeypatch.setattr(onnx_runtime, "_export", export_here)
    assert Predictor(random_checkpoint).runtime == "onnxruntime"
    assert len(list(private_onnx_cache.glob("*.onnx"))) == 1

    # ...and where that fails too, PyTorch runs the network.
    def broken_export(*args: object) -> None:
        raise RuntimeError("exporter does not support this operator")

    for file in private_onnx_cache.glob("*.onnx"):
        file.unlink()
    monkeypatch.setattr(onnx_runtime, "_export", broken_export)
    fallback = Predictor(random_checkpoint)
    assert fallback.runtime == "torch"
    assert fallback.predict(_image((64, 64))).probability.shape == (64, 64)
