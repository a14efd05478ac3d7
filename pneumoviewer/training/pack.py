"""The compact image pack: every labelled example at one input size in a single `.npz`, to carry to a GPU.

The per-image cache (`data.cached_example`) is keyed by each file's path and modification time, so
it is useless on another machine, and at 384² it is about 300 kB an image. A pack holds the same
uint8 pixels and masks plus the labels (ids, source, RLE rows), so `pneumoviewer train --pack` needs
neither the data folders nor the cache. Pixels are stored as PNG (lossless, the cache's exact bytes)
or as JPEG of a given quality (lossy: about half the size of PNG at quality 90; the training
augmentation already recompresses half its examples as JPEG, and `docs/model.md` gives the measured
pixel error). Masks are bit-packed, and the file deflated. Sizes at 384² for the 2,002 SIIM + extra images: PNG about
135 MB, JPEG 90 48 MB, within 0.94 grey levels of the cache on average (docs/model.md, "Training campaign").
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pneumoviewer.io.atomic import atomic_write_bytes
from pneumoviewer.training.data import CACHE_VERSION, LabelledImage, TrainingDataError, load_examples

_ROW_SEPARATOR = "|"  # RLE rows are digits and spaces (or -1): never a "|"


@dataclass(frozen=True)
class ImagePack:
    """A loaded pack: the labelled images (primary and extra) and their examples, by image id."""

    path: Path
    size: int
    images: list[LabelledImage]
    pixels: np.ndarray  # uint8 [N,S,S]
    masks: np.ndarray  # bool [N,S,S]

    def by_source(self, source: str) -> list[LabelledImage]:
        return [image for image in self.images if image.source == source]

    def examples(self, images: Sequence[LabelledImage]) -> tuple[np.ndarray, np.ndarray]:
        """(pixels, masks) of `images`, in their order, like `data.load_examples`."""
        index = {image.image_id: position for position, image in enumerate(self.images)}
        rows = [index[image.image_id] for image in images]
        return self.pixels[rows], self.masks[rows]


def write_pack(
    path: Path, images: Sequence[LabelledImage], size: int, cache_dir: Path, codec: str = "png",
    progress: bool = True,
) -> Path:
    """Write the examples of `images` (through the decoded-image cache) to `path` as one `.npz`.

    `codec` is "png" (lossless) or "jpeg<quality>", e.g. "jpeg90". Returns `path`.
    """
    encode_args = _encoder(codec)
    pixels, masks = load_examples(images, size, cache_dir, progress)
    encoded = [
        np.frombuffer(cv2.imencode(encode_args[0], image, encode_args[1])[1], dtype=np.uint8) for image in pixels
    ]
    offsets = np.cumsum([0] + [len(item) for item in encoded]).astype(np.int64)
    buffer = io.BytesIO()
    np.savez_compressed(  # the padded label strings and bit-packed masks shrink to almost nothing
        buffer,
        format=np.array("pneumoviewer-pack-1"), cache_version=np.array(CACHE_VERSION), size=np.array(size),
        codec=np.array(codec), image_ids=np.array([image.image_id for image in images]),
        sources=np.array([image.source for image in images]),
        rle_rows=np.array([_ROW_SEPARATOR.join(image.rle_rows) for image in images]),
        encoded_pixels=np.concatenate(encoded) if encoded else np.zeros(0, np.uint8), offsets=offsets,
        packed_masks=np.packbits(masks.reshape(len(images), -1), axis=1),
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def read_pack(path: Path) -> ImagePack:
    """Load a pack written by `write_pack`; a damaged or foreign file raises `TrainingDataError` naming it."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["format"]) != "pneumoviewer-pack-1":
                raise TrainingDataError(path, "not a PneumoViewer image pack")
            size = int(stored["size"])
            ids, sources, rows = stored["image_ids"], stored["sources"], stored["rle_rows"]
            encoded, offsets = stored["encoded_pixels"], stored["offsets"]
            packed_masks = stored["packed_masks"]
    except (OSError, KeyError, ValueError) as err:
        raise TrainingDataError(path, f"cannot read this image pack ({err})") from None
    pixels = np.empty((len(ids), size, size), dtype=np.uint8)
    for index in range(len(ids)):
        decoded = cv2.imdecode(encoded[offsets[index]:offsets[index + 1]], cv2.IMREAD_UNCHANGED)
        if decoded is None or decoded.shape != (size, size):
            raise TrainingDataError(path, f"image {ids[index]} of the pack does not decode")
        pixels[index] = decoded
    masks = np.unpackbits(packed_masks, axis=1, count=size * size).reshape(len(ids), size, size).astype(bool)
    images = [
        LabelledImage(str(image_id), path, str(source), tuple(str(encoded_rows).split(_ROW_SEPARATOR)))
        for image_id, source, encoded_rows in zip(ids, sources, rows, strict=True)
    ]
    return ImagePack(path, size, images, pixels, masks)


def _encoder(codec: str) -> tuple[str, list[int]]:
    if codec == "png":
        return ".png", [cv2.IMWRITE_PNG_COMPRESSION, 9]
    if codec.startswith("jpeg") and codec[4:].isdigit() and 1 <= int(codec[4:]) <= 100:
        return ".jpg", [cv2.IMWRITE_JPEG_QUALITY, int(codec[4:])]
    raise ValueError(f"codec must be 'png' or 'jpeg<1-100>', not {codec!r}")
