"""Photographs for miniature datasets: real handwritten digits pasted in colour over real photographs.

The digits are scikit-learn's 1,797 real 8x8 handwritten digits (``miil.core.data.load_digits_split``; train splits
of a miniature use the train digits, validation and test splits the disjoint test digits) and the backgrounds are
dimmed crops of the real photographs that ship with scikit-learn (``china.jpg``, ``flower.jpg``). A class ``k`` is
digit ``k % 10`` painted in colour ``PALETTE[k // 10]``, so up to 30 classes stay visually distinct and learnable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.embedded import load_digits_split
from ..data.mosaic import MosaicDigit

__all__ = [
    "PALETTE",
    "Box",
    "class_digits",
    "paste_digit",
    "photo_background",
    "render_mosaic_photo",
    "render_single_digit_photo",
    "save_image",
]

#: Colour of the digits of classes 0-9, 10-19 and 20-29.
PALETTE = ((250, 244, 228), (255, 84, 60), (70, 160, 255))
_DIGIT = 8


@dataclass(frozen=True)
class Box:
    """An object drawn on a photograph: its class and its tight box in pixels (``x, y`` of the top-left corner)."""

    label: int
    x: int
    y: int
    width: int
    height: int


@lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_sample_images

    return tuple(np.asarray(img) for img in load_sample_images().images)


@lru_cache(maxsize=2)
def class_digits(split: str) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """The real digits of one split and, per digit class, the rows holding it: ``(images [N, 8, 8], rows)``."""
    images, labels = load_digits_split(split)
    return images, tuple(np.flatnonzero(labels == c) for c in range(10))


def photo_background(rng: np.random.Generator, height: int, width: int, *, gain: float = 0.35) -> np.ndarray:
    """A dimmed random crop of a real photograph, resized to ``height x width``: float32 ``[H, W, 3]`` in 0..255.

    Args:
        rng: Random generator (photo, crop position and size).
        height: Output height.
        width: Output width.
        gain: Brightness factor (the digits stay bright on a dim background).
    """
    photos = _photos()
    photo = photos[int(rng.integers(len(photos)))]
    ph, pw = photo.shape[:2]
    ch = max(8, int(ph * float(rng.uniform(0.2, 0.6))))
    cw = min(pw, max(8, int(ch * width / height)))
    top, left = int(rng.integers(ph - ch + 1)), int(rng.integers(pw - cw + 1))
    crop = Image.fromarray(photo[top : top + ch, left : left + cw]).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(crop, dtype=np.float32) * gain


def paste_digit(
    canvas: np.ndarray, digit: np.ndarray, colour: Sequence[float], top: int, left: int, size: int
) -> tuple[int, int, int, int] | None:
    """Paint an 8x8 grey digit, scaled to ``size``, in ``colour`` onto ``canvas`` (in place; clipped at the edges).

    Returns:
        The tight box ``(x, y, width, height)`` of the painted strokes, or None when nothing landed on the canvas.
    """
    alpha = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR), np.float32) / 255.0
    h, w = canvas.shape[:2]
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + size, h), min(left + size, w)
    if y1 <= y0 or x1 <= x0:
        return None
    a = alpha[y0 - top : y1 - top, x0 - left : x1 - left, None]
    region = canvas[y0:y1, x0:x1]
    region[...] = region * (1 - a) + np.asarray(colour, np.float32) * a
    ink = np.argwhere(a[..., 0] > 0.2)
    if not len(ink):
        return None
    (ya, xa), (yb, xb) = ink.min(0), ink.max(0)
    return int(x0 + xa), int(y0 + ya), int(xb - xa + 1), int(yb - ya + 1)


def _colour(label: int, rng: np.random.Generator) -> np.ndarray:
    return np.asarray(PALETTE[label // 10], np.float32) * float(rng.uniform(0.85, 1.0))


def render_mosaic_photo(
    items: Sequence[MosaicDigit],
    split: str,
    rng: np.random.Generator,
    *,
    side: int,
    scale: int,
    width: int | None = None,
) -> tuple[np.ndarray, list[Box]]:
    """Render a mosaic plan (from :func:`miil.core.data.plan_digit_mosaics`) as a colour photograph.

    Args:
        items: The digits of the mosaic; positions are in mosaic pixels and get multiplied by ``scale``.
        split: Split of the digits the plan refers to.
        rng: Random generator (background, colour shades).
        side: Mosaic side in mosaic pixels (``grid * cell``).
        scale: Photo pixels per mosaic pixel.
        width: Photo width (default: square); extra width is background only.

    Returns:
        ``(uint8 [H, W, 3] image, one Box per digit that left ink)``.
    """
    digits, _ = class_digits(split)
    height = side * scale
    canvas = photo_background(rng, height, width or height)
    boxes = []
    for d in items:
        box = paste_digit(canvas, digits[d.digit], _colour(d.label, rng), d.top * scale, d.left * scale, _DIGIT * scale)
        if box is not None:
            boxes.append(Box(d.label, *box))
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8), boxes


def render_single_digit_photo(
    label: int, split: str, rng: np.random.Generator, *, height: int, width: int
) -> tuple[np.ndarray, Box]:
    """One digit of class ``label`` (digit ``label % 10`` in its palette colour) at a random place and size.

    Args:
        label: Class (0-29).
        split: Split of the real digits.
        rng: Random generator (digit image, size, position, background).
        height: Photo height.
        width: Photo width.

    Returns:
        ``(uint8 [H, W, 3] image, the digit's Box)``.
    """
    digits, rows = class_digits(split)
    digit = digits[int(rng.choice(rows[label % 10]))]
    canvas = photo_background(rng, height, width)
    size = int(rng.integers(max(8, min(height, width) // 2), min(height, width) + 1))
    top, left = int(rng.integers(height - size + 1)), int(rng.integers(width - size + 1))
    box = paste_digit(canvas, digit, _colour(label, rng), top, left, size) or (left, top, size, size)
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8), Box(label, *box)


def save_image(image: np.ndarray, path: Path, *, mode: str = "RGB", fmt: str = "JPEG", quality: int = 90) -> Path:
    """Save a uint8 RGB array as ``fmt`` after converting it to ``mode`` ("RGB", "L" grey or "CMYK")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(image)
    if mode != "RGB":
        img = img.convert(mode)
    if fmt == "JPEG":
        img.save(path, format="JPEG", quality=quality)
    else:
        img.save(path, format=fmt)
    return path
