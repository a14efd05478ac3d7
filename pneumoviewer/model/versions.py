"""The models a site promoted, kept in the per-user data folder, and which one is in use.

Layout: `<user data>/models/registry.json` (the version in use and the order versions were used in,
for rolling back) and one folder per promoted model, `<user data>/models/<name>/model.safetensors`
with its card `model.json`. Promoting copies the candidate's two files into a new folder (never over
an existing one) and records in the card's `training.version` its name, when and whether it was
promoted against the gate ("forced"). The bundled model (`paths.default_model_path()`) is listed
first and is never written: it is only ever read, and every write here goes under the registry folder.

The card of a fine-tuned model holds image ids only (which cases trained it and which were held
out), never names, paths or pixels; the weights themselves are derived from the site's images.
No torch here: the app lists and switches versions on a worker.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pneumoviewer.errors import FileProblem
from pneumoviewer.io.atomic import atomic_write_bytes, atomic_write_text
from pneumoviewer.model.identity import checkpoint_paths
from pneumoviewer.paths import default_model_path, resources_dir, user_data_dir

BUNDLED = "bundled"
REGISTRY_FILE = "registry.json"
_NAME = re.compile(r"^site-(\d{3,})$")


class RegistryError(FileProblem):
    """A model version that cannot be promoted, found or switched to; names the file and why."""


@dataclass(frozen=True)
class ModelVersion:
    name: str  # "bundled" or "site-001", "site-002", ...
    weights: Path
    card: dict[str, Any]

    @property
    def bundled(self) -> bool:
        return self.name == BUNDLED

    @property
    def version_record(self) -> dict[str, Any]:
        return dict((self.card.get("training") or {}).get("version") or {})

    @property
    def label(self) -> str:
        """How the window and exports name it: "bundled" or "site-002 (promoted 2026-12-01 12:31)"."""
        if self.bundled:
            return "bundled"
        promoted = str(self.version_record.get("promoted", ""))[:16].replace("T", " ")
        forced = ", promoted against the gate" if self.version_record.get("forced") else ""
        return f"{self.name} (promoted {promoted}{forced})" if promoted else self.name

    @property
    def gate(self) -> dict[str, Any] | None:
        return (self.card.get("training") or {}).get("gate")

    @property
    def parent(self) -> dict[str, Any] | None:
        return (self.card.get("training") or {}).get("finetuned_from")


def version_name(card: dict[str, Any] | None) -> str | None:
    """The registry name recorded in a loaded model's card (None: not a promoted version)."""
    version = ((card or {}).get("training") or {}).get("version") or {}
    name = version.get("name")
    return str(name) if name else None


class ModelRegistry:
    def __init__(self, data_dir: Path | None = None) -> None:
        """`data_dir` overrides the per-user data folder (tests, portable installs)."""
        self.directory = (Path(data_dir) if data_dir is not None else user_data_dir()) / "models"
        self.registry_file = self.directory / REGISTRY_FILE

    # -- reading --------------------------------------------------------------------------------------
    def versions(self) -> list[ModelVersion]:
        """The bundled model first, then the promoted ones, oldest first (unreadable folders left out)."""
        found = [self._bundled()]
        if self.directory.is_dir():
            folders = sorted((f for f in self.directory.iterdir() if f.is_dir() and _NAME.match(f.name)),
                             key=lambda folder: int(_NAME.match(folder.name).group(1)))  # type: ignore[union-attr]
            for folder in folders:
                version = self._read(folder)
                if version is not None:
                    found.append(version)
        return found

    def version(self, name: str) -> ModelVersion:
        for version in self.versions():
            if version.name == name:
                return version
        raise RegistryError(self.directory / name, "no such model version (removed, or never promoted)")

    def active(self) -> ModelVersion:
        """The version in use; the bundled model when none was chosen or the chosen one is gone."""
        name = self._state()["active"]
        try:
            return self.version(name)
        except RegistryError:
            return self._bundled()

    def name_of(self, weights: Path) -> str | None:
        """The version whose weights are at `weights` (None: a file outside the registry)."""
        resolved = Path(weights).resolve()
        for version in self.versions():
            if version.weights.resolve() == resolved:
                return version.name
        return None

    # -- changing -------------------------------------------------------------------------------------
    def promote(self, candidate: Path, forced: bool = False) -> ModelVersion:
        """Copy the candidate checkpoint into a new version folder and use it from now on."""
        weights, card_file = checkpoint_paths(candidate)
        for file in (weights, card_file):
            if not file.is_file():
                raise RegistryError(file, "the candidate model file is missing")
        try:
            card = json.loads(card_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise RegistryError(card_file, f"the candidate's card is unreadable ({error})") from error
        name = self._next_name()
        folder = self.directory / name
        target_weights = folder / "model.safetensors"
        if _inside(target_weights, resources_dir()):
            raise RegistryError(target_weights, "the bundled models folder is never written")
        card.setdefault("training", {})["version"] = {
            "name": name, "promoted": datetime.now(UTC).isoformat(timespec="seconds"), "forced": bool(forced),
        }
        try:
            folder.mkdir(parents=True, exist_ok=False)
            shutil.copyfile(weights, folder / "model.safetensors.tmp")
            (folder / "model.safetensors.tmp").replace(target_weights)
            atomic_write_bytes(folder / "model.json", (json.dumps(card, indent=2) + "\n").encode("utf-8"))
        except OSError as error:
            raise RegistryError(folder, f"cannot keep the new model version ({error.strerror or error})") from error
        return self.switch(name)

    def switch(self, name: str) -> ModelVersion:
        """Use version `name` from now on (the bundled one is "bundled"); remembered for rolling back."""
        version = self.version(name)
        state = self._state()
        history = [entry for entry in state["history"] if entry != name] + [name]
        self._write_state({"active": name, "history": history})
        return version

    def roll_back(self) -> ModelVersion:
        """Back to the version used before the current one (the bundled model when there is none)."""
        state = self._state()
        names = {version.name for version in self.versions()}
        history = [entry for entry in state["history"] if entry in names and entry != state["active"]]
        previous = history[-1] if history else BUNDLED
        self._write_state({"active": previous, "history": history})
        return self.version(previous)

    # -- files ----------------------------------------------------------------------------------------
    def _bundled(self) -> ModelVersion:
        weights = default_model_path()
        return ModelVersion(BUNDLED, weights, _card(weights) or {})

    def _read(self, folder: Path) -> ModelVersion | None:
        weights = folder / "model.safetensors"
        card = _card(weights)
        return None if card is None or not weights.is_file() else ModelVersion(folder.name, weights, card)

    def _next_name(self) -> str:
        numbers = [int(match.group(1)) for f in (self.directory.iterdir() if self.directory.is_dir() else ())
                   if (match := _NAME.match(f.name))]
        return f"site-{max(numbers, default=0) + 1:03d}"

    def _state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.registry_file.read_text(encoding="utf-8"))
            return {"active": str(state["active"]), "history": [str(entry) for entry in state["history"]]}
        except (OSError, ValueError, KeyError, TypeError):
            return {"active": BUNDLED, "history": []}

    def _write_state(self, state: dict[str, Any]) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.registry_file, json.dumps(state, indent=1) + "\n")
        except OSError as error:
            raise RegistryError(self.registry_file, f"cannot record the model in use ({error.strerror or error})"
                                ) from error


def _card(weights: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(checkpoint_paths(weights)[1].read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True
