"""THE rule for which images the AI is validated for: chest radiographs (CR, DX or DR) of the chest.

The model was trained and tuned on SIIM-ACR chest radiographs (CR). Another modality (a CT or MR
slice, a nuclear-medicine or secondary-capture image) or another body part, when the header states
one, is outside what its figures say anything about: such images are still shown and can be
reviewed, but carry a visible warning and are scored only on request (`predict --score-unvalidated`,
the app's Worklist ▸ "Score images the AI is not validated for"). A header that states neither (PNG/JPEG
training images, files without the tags) is not second-guessed.

Light on purpose (no pydicom): the window's worklist reads it before the core is imported.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pneumoviewer.io.dicom import DicomMetadata

VALIDATED_MODALITIES = frozenset({"CR", "DX", "DR"})
# Body Part Examined as written in the wild: the DICOM term CHEST, and what vendors and other
# languages put there for a chest film.
CHEST_WORDS = frozenset({"CHEST", "THORAX", "TORAX", "LUNG", "LUNGS"})


def ai_scope_warning(metadata: DicomMetadata | None) -> str | None:
    """Why the AI is not validated for this image ("not a chest radiograph: CT — AI not validated"), else None."""
    if metadata is None:
        return None
    return _warning(metadata.modality, metadata.body_part)


@functools.lru_cache(maxsize=1024)  # a folder holds few distinct pairs; its worklist asks once per image
def _warning(modality: str | None, body_part: str | None) -> str | None:
    reasons = []
    modality = (modality or "").strip().upper()
    if modality and modality not in VALIDATED_MODALITIES:
        reasons.append(modality)
    body_part = (body_part or "").strip().upper()
    if body_part and not CHEST_WORDS & set(re.split(r"[^A-Z]+", body_part)):
        reasons.append(f"body part {body_part}")
    return f"not a chest radiograph: {', '.join(reasons)} — AI not validated" if reasons else None
