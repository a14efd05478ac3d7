"""Pictures of a prediction: the Grad-CAM heat alone, and an overlay to read (PNG, or burned into DICOM).

The overlay is the radiograph with the heat blended in (transparent where the heat is zero) and the
predicted mask's outline in cyan, a colour absent from the heat scale, plus a caption with the score,
and, when given, each lesion's box with its short label (`LesionLabel`, from `review.lesions`).
`place_label` is the one rule for where such a label goes, here and on the app's canvas: beside
the lesion's box, never over it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from skimage.morphology import isotropic_dilation
from skimage.segmentation import find_boundaries

# A dark-red -> orange -> yellow -> white heat scale (anchors at 0, 1/3, 2/3, 1), like "inferno"'s top.
_HEAT_ANCHORS = np.array([[120, 0, 0], [230, 60, 0], [255, 200, 0], [255, 255, 220]], dtype=np.float32)
_OUTLINE_RGB = (0, 255, 255)
_HEAT_OPACITY = 0.5
_LABEL_RGB = (255, 230, 0)  # the boxes and their labels: yellow, apart from the outline and the heat

Rect = tuple[float, float, float, float]  # left, top, right, bottom (x right, y down)


class LesionLabel(NamedTuple):
    box: tuple[int, int, int, int]  # row0, row1, col0, col1 (end-exclusive), as `review.lesions.Lesion.box`
    text: str


def place_label(box: Rect, size: tuple[float, float], bounds: Rect, avoid: Sequence[Rect] = (),
                gap: float = 3.0) -> Rect:
    """Where a label of `size` (width, height) goes beside `box`: above, below, right or left of it,
    inside `bounds`, clear of the rectangles in `avoid` (other boxes and labels) when possible and
    never over `box` itself unless no side of it has room."""
    width, height = size
    left, top, right, bottom = box
    candidates = [
        (left, top - gap - height), (left, bottom + gap), (right + gap, top), (left - gap - width, top),
        (right - width, top - gap - height), (right - width, bottom + gap),
        (right + gap, bottom - height), (left - gap - width, bottom - height),
    ]
    inside = [_clamped((x, y, x + width, y + height), bounds) for x, y in candidates]
    beside = [rect for rect in inside if not _overlap(rect, box)]
    for rect in beside:
        if not any(_overlap(rect, other) for other in avoid):
            return rect
    return beside[0] if beside else inside[0]


def _clamped(rect: Rect, bounds: Rect) -> Rect:
    """`rect` moved (not resized) to lie inside `bounds` as far as it fits."""
    width, height = rect[2] - rect[0], rect[3] - rect[1]
    x = min(max(rect[0], bounds[0]), max(bounds[2] - width, bounds[0]))
    y = min(max(rect[1], bounds[1]), max(bounds[3] - height, bounds[1]))
    return (x, y, x + width, y + height)


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


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


def overlay_picture(pixels: np.ndarray, mask: np.ndarray, heat: np.ndarray | None, caption: str,
                    labels: Sequence[LesionLabel] = ()) -> Image.Image:
    """The overlay with `caption` burned in at the top left, white on a black halo (readable on any grey),
    and each lesion's box with its label beside it."""
    picture = Image.fromarray(overlay_rgb(pixels, mask, heat), mode="RGB")
    font_size = max(12, picture.height // 40)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=font_size)
    margin = font_size // 2
    caption_box = draw.textbbox((margin, margin), caption, font=font, stroke_width=2)
    draw.text((margin, margin), caption, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0), font=font)
    _draw_lesion_labels(draw, labels, picture.size, font, [caption_box])
    return picture


def _draw_lesion_labels(draw: ImageDraw.ImageDraw, labels: Sequence[LesionLabel], size: tuple[int, int],
                        font: ImageFont.FreeTypeFont | ImageFont.ImageFont, taken: list[Rect]) -> None:
    line = max(1, round(max(size) / 512))
    boxes: list[Rect] = [(box[2] - line, box[0] - line, box[3] + line, box[1] + line) for box, _ in labels]
    taken = [*taken, *boxes]
    for (_, text), rect in zip(labels, boxes, strict=True):
        draw.rectangle(rect, outline=_LABEL_RGB, width=line)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font, stroke_width=2)
        spot = place_label(rect, (right - left, bottom - top), (0, 0, *size), [r for r in taken if r != rect])
        taken.append(spot)
        draw.text((spot[0] - left, spot[1] - top), text, fill=_LABEL_RGB, stroke_width=2, stroke_fill=(0, 0, 0),
                  font=font)


def write_overlay_png(
    path: Path, pixels: np.ndarray, mask: np.ndarray, heat: np.ndarray | None, caption: str,
    labels: Sequence[LesionLabel] = (),
) -> None:
    picture = overlay_picture(pixels, mask, heat, caption, labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
