"""Model files from elsewhere: a pickle that would run code is refused without running it; damage is a clear error.

The core refusal is tested in tests/test_checkpoint.py; here every way a user can hand the program a
model file (the `predict`, `evaluate` and `self-test` commands' --model, and the app's model loader)
is given hostile and damaged files. In the app, a chosen model that cannot be used gives way to the
bundled one (with a message naming the file); if the bundled model itself fails, the app reviews without AI.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
import ui_driver  # tests/ui_driver.py
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from ui_driver import WAIT_MS, open_and_wait

from pneumoviewer.cli import main
from pneumoviewer.model.card import ModelCard, NetworkConfig
from pneumoviewer.review.case import ReviewStatus

make_window = ui_driver.make_window  # fixtures
study_folder = ui_driver.study_folder
CARD = ModelCard(network=NetworkConfig(input_size=64, decoder_channels=(32, 16, 16, 8, 8)))


class CreatesMarkerWhenUnpickled:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def hostile_models(folder: Path, good_weights: Path) -> dict[str, tuple[Path, str]]:
    """name -> (model file, words its error must contain); every file has a valid card beside it."""
    marker = folder / "marker"
    payload = {"state_dict": CreatesMarkerWhenUnpickled(marker)}
    files: dict[str, tuple[Path, str]] = {}

    def add(name: str, filename: str, reason: str) -> Path:
        path = folder / filename
        path.with_suffix(".json").write_text(json.dumps(CARD.to_dict()))
        files[name] = (path, reason)
        return path

    torch.save(payload, add("pickle payload, torch zip", "zipped.pth", "refused"))
    with open(add("pickle payload, legacy pickle", "legacy.pt", "refused"), "wb") as stream:
        pickle.dump(payload, stream)
    add("pickle named .safetensors", "disguised.safetensors", "damaged").write_bytes(pickle.dumps(payload))
    data = good_weights.read_bytes()
    add("truncated safetensors", "truncated.safetensors", "damaged").write_bytes(data[: len(data) // 3])
    add("safetensors header only", "header.safetensors", "damaged").write_bytes(data[:64])
    add("empty file", "empty.safetensors", "damaged").write_bytes(b"")
    return files


@pytest.fixture
def models(tmp_path: Path, random_checkpoint: Path) -> dict[str, tuple[Path, str]]:
    return hostile_models(tmp_path, random_checkpoint)


@pytest.mark.parametrize("command", ["predict", "evaluate", "self-test"])
def test_every_command_refuses_a_hostile_or_damaged_model_with_a_clear_error(
    command: str, models: dict[str, tuple[Path, str]], tmp_path: Path, siim_dir: Path,
    siim_labels_csv: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    image = next((siim_dir / "dicom-images").rglob("*.dcm"))
    arguments = {
        "predict": ["predict", str(image), "--out", str(tmp_path / "out.csv")],
        "evaluate": ["evaluate", "--labels", str(siim_labels_csv), "--images", str(image.parent)],
        "self-test": ["self-test", "--image", str(image)],
    }[command]
    for name, (model, reason) in models.items():
        assert main([*arguments, "--model", str(model)]) != 0, name
        error = capsys.readouterr().err
        assert f"pneumoviewer: {model}: " in error and reason in error, (name, error)
        assert "Traceback" not in error
    assert not (tmp_path / "marker").exists()  # no payload ever ran
    assert not (tmp_path / "out.csv").exists()


def test_the_app_reviews_without_ai_when_its_model_is_hostile(
    qtbot, make_window, study_folder: Path, models: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    from pneumoviewer.model.inference import Predictor

    hostile, _ = models["pickle payload, torch zip"]
    window = make_window(lambda: Predictor.cached(hostile))
    open_and_wait(qtbot, window, study_folder)
    qtbot.waitUntil(lambda: window.controller.model_queue.model_error is not None, timeout=WAIT_MS)
    assert str(hostile) in window.status.ai_label.toolTip() and "refused" in window.status.ai_label.toolTip()
    assert not (tmp_path / "marker").exists()
    QTest.keyClick(window, Qt.Key.Key_R)  # reviewing goes on
    assert window.controller.session.case(window.controller.current_id).status is ReviewStatus.REJECTED


def test_a_chosen_model_that_cannot_be_used_gives_way_to_the_bundled_one(
    qtbot, make_window, study_folder: Path, models: dict[str, tuple[Path, str]], random_checkpoint: Path,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pneumoviewer import paths

    monkeypatch.setattr(paths, "default_model_path", lambda: random_checkpoint)  # a small bundled model
    window = make_window()
    open_and_wait(qtbot, window, study_folder)  # a model chosen while the first one still loads counts too
    for name in ("pickle payload, torch zip", "truncated safetensors"):
        chosen, reason = models[name]
        with qtbot.waitSignal(window.controller.model_queue.sigPredicted, timeout=WAIT_MS):  # the AI goes on, bundled
            window.controller.use_model(chosen)
        qtbot.waitUntil(lambda chosen=chosen: str(chosen) in window.status.ai_label.toolTip(), timeout=WAIT_MS)
        assert window.status.ai_label.toolTip().startswith(f"{chosen}: ") and reason in window.status.ai_label.toolTip()
        assert window.status.ai_label.text().startswith(f"AI: {random_checkpoint.name}")
        assert "the chosen model was not used" in window.status.ai_label.text()
        assert window.controller.model_queue.model_error is None
    assert not (tmp_path / "marker").exists()
