"""Training data: labelled radiographs, a decoded-and-resized cache, the split, and augmentation.

Every source (SIIM DICOMs, PNG/JPEG exports) goes through the same path: `load_radiograph(...).pixels`
(display pixels in [0, 1]), the app's own resize to the input size (`pipeline.resize_pixels`), 8-bit
storage in the cache, and the same augmentation including JPEG compression; the examples are then
normalised by `pipeline.prepare_batch` with the model card's settings, as the app does. The network
thus cannot tell a file format from the pixels it is given, which matters because the PNG/JPEG
extras are almost all positive, and it sees at training what it sees in the app (up to the 8-bit
rounding of the cache).
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import torch

from pneumoviewer.errors import FileProblem
from pneumoviewer.io import rle
from pneumoviewer.io.annotations import read_annotation_rows
from pneumoviewer.io.images import load_radiograph
from pneumoviewer.model.pipeline import INPUT_LEVELS, InputSpec, prepare_batch, resize_pixels
from pneumoviewer.progress import progress_bar
from pneumoviewer.training.state import AugmentationRandom

IMAGE_SUFFIXES = (".dcm", ".png", ".jpg", ".jpeg")
# Bump when the decode/resize recipe changes, so stale cache files are never reused.
# 2: resized by `pipeline.resize_pixels` (the app's torch area resize) instead of OpenCV's INTER_AREA.
CACHE_VERSION = 2


@dataclass(frozen=True)
class LabelledImage:
    """One labelled radiograph: its file, which data set it came from, and its RLE rows."""

    image_id: str
    path: Path
    source: str
    rle_rows: tuple[str, ...]

    @property
    def positive(self) -> bool:
        return any(row.strip() not in ("-1", "") for row in self.rle_rows)


class TrainingDataError(FileProblem):
    """Labels that cannot be matched with images; `str()` names the file and the problem."""


def find_image_files(folder: Path) -> dict[str, Path]:
    """`<ImageId>.dcm|.png|.jpg|.jpeg` files under `folder` (recursive), keyed by ImageId."""
    files: dict[str, Path] = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file() and not path.name.startswith("."):
            files.setdefault(path.stem, path)
    return files


def load_labelled_images(labels_csv: Path, images_dir: Path, source: str) -> list[LabelledImage]:
    """Every labelled image of a `train-rle.csv` found under `images_dir`, in label-file order.

    Labels without an image file are an error (a typo in a path would otherwise silently train
    on a fraction of the data).
    """
    rows: dict[str, list[str]] = defaultdict(list)
    for image_id, encoded in read_annotation_rows(labels_csv):
        rows[image_id].append(encoded)
    files = find_image_files(images_dir)
    missing = [image_id for image_id in rows if image_id not in files]
    if missing:
        raise TrainingDataError(
            Path(images_dir),
            f"{len(missing)} of {len(rows)} labelled images of {labels_csv} are not in this folder "
            f"(first: {missing[0]})",
        )
    return [LabelledImage(image_id, files[image_id], source, tuple(encoded)) for image_id, encoded in rows.items()]


def split_validation(
    images: Sequence[LabelledImage], fraction: float, seed: int
) -> tuple[list[LabelledImage], list[LabelledImage]]:
    """(train, validation): a seeded split stratified by positive/negative, image-level."""
    generator = np.random.default_rng(seed)
    validation_ids: set[str] = set()
    for positive in (True, False):
        ids = sorted(image.image_id for image in images if image.positive == positive)
        count = round(len(ids) * fraction)
        validation_ids.update(generator.permutation(ids)[:count].tolist())
    return _partition(images, validation_ids)


def split_folds(
    images: Sequence[LabelledImage], folds: int, fold: int, seed: int
) -> tuple[list[LabelledImage], list[LabelledImage]]:
    """(train, validation) for fold `fold` (0-based) of a seeded `folds`-fold split, stratified, by image.

    The rule: positives and negatives separately, their ids sorted, permuted by
    `np.random.default_rng(seed)` (positives first, then negatives, from one generator), then dealt
    round-robin: the j-th id of the permutation goes to fold j mod `folds`. Every image is in exactly
    one fold, each fold holds the same share of positives to within one image, and the folds depend
    only on the ids, their labels and the seed (not on file order or paths).
    """
    if folds < 2 or not 0 <= fold < folds:
        raise ValueError(f"fold {fold} of {folds}: need folds >= 2 and 0 <= fold < folds")
    generator = np.random.default_rng(seed)
    validation_ids: set[str] = set()
    for positive in (True, False):
        ids = generator.permutation(sorted(image.image_id for image in images if image.positive == positive))
        validation_ids.update(ids[fold::folds].tolist())
    return _partition(images, validation_ids)


def _partition(
    images: Sequence[LabelledImage], validation_ids: set[str]
) -> tuple[list[LabelledImage], list[LabelledImage]]:
    train = [image for image in images if image.image_id not in validation_ids]
    validation = [image for image in images if image.image_id in validation_ids]
    return train, validation


def decode_mask(image: LabelledImage, shape: tuple[int, int]) -> np.ndarray:
    """The union of the image's RLE rows as a bool mask of `shape`."""
    try:
        return rle.decode_rows(image.rle_rows, shape)
    except rle.RleError as err:
        raise TrainingDataError(image.path, f"its label row does not decode ({err})") from None


def cached_example(image: LabelledImage, size: int, cache_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(pixels uint8 SxS, mask bool SxS) at `size`, decoded once and then read from `cache_dir`."""
    stat = image.path.stat()
    key = hashlib.sha1(f"{image.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{image.rle_rows}".encode())
    cache_file = Path(cache_dir) / f"v{CACHE_VERSION}-{size}" / f"{image.image_id}-{key.hexdigest()[:12]}.npy"
    if cache_file.is_file():
        stored = np.load(cache_file)
        return stored[0], stored[1].astype(bool)
    pixels = load_radiograph(image.path).pixels
    mask = decode_mask(image, pixels.shape)
    small_pixels = quantise(resize_pixels(pixels, size))
    small_mask = resize_pixels(mask.astype(np.float32), size) >= 0.5
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    temp_file = cache_file.with_suffix(".tmp.npy")
    np.save(temp_file, np.stack([small_pixels, small_mask.astype(np.uint8)]))
    temp_file.replace(cache_file)
    return small_pixels, small_mask


def quantise(pixels: np.ndarray) -> np.ndarray:
    """Pixels in [0, 1] -> uint8 0..255 (rounded): the cache's storage, within 1/510 of the input."""
    return np.clip(np.rint(np.asarray(pixels, dtype=np.float32) * INPUT_LEVELS), 0, INPUT_LEVELS).astype(np.uint8)


def dequantise(pixels: np.ndarray) -> np.ndarray:
    """uint8 cached pixels -> float32 display pixels in [0, 1], ready for `pipeline.prepare_batch`."""
    return np.asarray(pixels, dtype=np.float32) / INPUT_LEVELS


def load_examples(
    images: Sequence[LabelledImage], size: int, cache_dir: Path, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Stacked (pixels uint8 [N,S,S], masks bool [N,S,S]) for `images`, filling the cache as needed."""
    pixels = np.empty((len(images), size, size), dtype=np.uint8)
    masks = np.empty((len(images), size, size), dtype=bool)
    with progress_bar(len(images), f"decoding images ({size}px)", enabled=progress) as bar:
        for index, image in enumerate(images):
            pixels[index], masks[index] = cached_example(image, size, cache_dir)
            bar.update()
    return pixels, masks


def training_augmentation(seed: int, rendering: bool = False) -> A.Compose:
    """Geometric and photometric variation seen on real chest films, plus JPEG artefacts on every source.

    Horizontal flips are kept: pneumothorax occurs on either side, and flips double the lesion
    positions the network sees. With `rendering`, also what another site's image processing does to
    a film (`rendering_variation`); without it the transforms and their random draws are exactly
    those every run before the option made, so such runs resume unchanged.
    """
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Affine(
                scale=(0.9, 1.1), translate_percent=(-0.06, 0.06), rotate=(-10, 10),
                border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0, p=0.7,
            ),
            A.OneOf(
                [A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15), A.RandomGamma((80, 120))],
                p=0.6,
            ),
            A.CLAHE(clip_limit=2.0, p=0.15),
            *(rendering_variation() if rendering else []),
            A.ImageCompression(quality_range=(40, 95), p=0.5),
        ],
        seed=seed,
    )


def rendering_variation() -> list[A.BasicTransform]:
    """Another site's processing of a film, drawn at random: edge enhancement, a tone curve, detector noise.

    Generic albumentations transforms over wide ranges, not `training.site_render`'s pipeline: the
    site twin made by that renderer stays a test the network was not shown (issue 13's twin came
    from yet another renderer). Each is applied to a minority of examples, so SIIM's own look stays
    the most common one.
    """
    return [
        A.OneOf([A.UnsharpMask(blur_limit=(5, 21), sigma_limit=(1.0, 4.0), alpha=(0.3, 0.8), threshold=0),
                 A.Sharpen(alpha=(0.1, 0.4), lightness=(0.9, 1.1))], p=0.4),
        A.RandomToneCurve(scale=0.25, p=0.4),
        A.GaussNoise(std_range=(0.005, 0.02), p=0.25),
    ]


def seed_augmentation(augmentation: A.Compose, seed: int) -> AugmentationRandom:
    """Seed `augmentation` with ONE numpy/Python generator pair shared by all its transforms, and return it.

    A single pair (rather than albumentations' one per transform) is what makes the augmentation
    stream checkpointable: saving and restoring these two generators continues it exactly.
    """
    shared = AugmentationRandom(np.random.default_rng(seed), random.Random(seed))
    augmentation.set_random_state(shared.numpy, shared.python)
    return shared


class RadiographDataset(torch.utils.data.Dataset):
    """Cached examples as network tensors: (input [C,S,S], mask [1,S,S] float, presence scalar float).

    Inputs are normalised by `pipeline.prepare_batch` with `spec` (the model card's input settings).
    """

    def __init__(
        self, pixels: np.ndarray, masks: np.ndarray, spec: InputSpec, augmentation: A.Compose | None = None
    ) -> None:
        self.pixels = pixels
        self.masks = masks
        self.spec = spec
        self.augmentation = augmentation

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pixels, mask = self.pixels[index], self.masks[index].astype(np.uint8)
        if self.augmentation is not None:
            augmented = self.augmentation(image=pixels, mask=mask)
            pixels, mask = augmented["image"], augmented["mask"]
        image = prepare_batch([dequantise(pixels)], self.spec)[0]
        mask_tensor = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None]
        return image, mask_tensor, (mask_tensor.amax() > 0).float()


def balanced_sample_weights(positive: Sequence[bool]) -> torch.Tensor:
    """Per-example sampling weights giving positives and negatives equal share of each epoch."""
    flags = np.asarray(positive, dtype=bool)
    positives = max(1, int(flags.sum()))
    negatives = max(1, int((~flags).sum()))
    return torch.as_tensor(np.where(flags, 0.5 / positives, 0.5 / negatives), dtype=torch.double)
