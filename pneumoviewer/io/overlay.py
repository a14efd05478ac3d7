"""Pictures of a prediction: the Grad-CAM heat alone, and an overlay to read (PNG, or burned into DICOM).

The overlay is the radiograph with the heat blended in (transparent where the heat is zero) and the
predicted mask's outline in cyan, a colour absent from the heat scale, plus a caption with the score.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from skimage.morphology import isotropic_dilation
from skimage.segmentation import find_boundaries

# A dark-red -> orange -> yellow -> white heat scale (anchors at 0, 1/3, 2/3, 1), like "inferno"'s top.
_HEAT_ANCHORS = np.array([[120, 0, 0], [230, 60, 0], [255, 200, 0], [255, 255, 220]], dtype=np.float32)
_OUTLINE_RGB = (0, 255, 255)
_HEAT_OPACITY = 0.5


def safe_file_stem(image_id: str) -> str:
    """An ImageId usable as a file name on every platform (SOP UIDs already are)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", image_id).strip(".") or "image"


def heat_colours(heat: np.ndarray) -> np.ndarray:
    """float HxW in [0, 1] -> uint8 HxWx3 on the heat scale."""
    positions = np.linspace(0.0, 1.0, len(_HEAT_ANCHORS))
    clipped = np.clip(heat, 0.0, 1.0)
    channels = [np.interp(clipped, positions, _HEAT_ANCHORS[:, c]) for c in range(3)]
    return np.stack(channels, axis=-1).astype(np.uint8)


def overlay_rgb(pixels: np.ndarray, mask: np.ndarray, heat: np.ndarray | None) -> np.ndarray:
    """uint8 HxWx3: grey radiograph, heat blended by its own value, mask outline on top."""
    grey = np.clip(pixels, 0.0, 1.0).astype(np.float32)[..., None] * 255.0
    picture = np.repeat(grey, 3, axis=-1)
    if heat is not None:
        alpha = (_HEAT_OPACITY * np.clip(heat, 0.0, 1.0))[..., None]
        picture = picture * (1.0 - alpha) + heat_colours(heat).astype(np.float32) * alpha
    picture = picture.astype(np.uint8)
    outline = find_boundaries(mask, mode="inner")
    # About 2 px on a 1024-pixel image, so the outline survives downscaled viewing.
    thickness = max(1, round(max(mask.shape) / 512))
    if thickness > 1 and outline.any():
        outline = isotropic_dilation(outline, thickness - 1) & mask
    picture[outline] = _OUTLINE_RGB
    return picture


def write_heat_png(path: Path, heat: np.ndarray) -> None:
    """The heat as an 8-bit grey PNG (0 = no contribution, 255 = the image's peak)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(np.clip(heat, 0.0, 1.0) * 255).astype(np.uint8), mode="L").save(path)


def overlay_picture(pixels: np.ndarray, mask: np.ndarray, heat: np.ndarray | None, caption: str) -> Image.Image:
    """The overlay with `caption` burned in at the top left, white on a black halo (readable on any grey)."""
    picture = Image.fromarray(overlay_rgb(pixels, mask, heat), mode="RGB")
    font_size = max(12, picture.height // 40)
    draw = ImageDraw.Draw(picture)
    draw.text((font_size // 2, font_size // 2), caption, fill=(255, 255, 255), stroke_width=2,
              stroke_fill=(0, 0, 0), font=ImageFont.load_default(size=font_size))
    return picture


def write_overlay_png(
    path: Path, pixels: np.ndarray, mask: np.ndarray, heat: np.ndarray | None, caption: str
) -> None:
    picture = overlay_picture(pixels, mask, heat, caption)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
