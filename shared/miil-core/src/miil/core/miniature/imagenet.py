"""A miniature ImageNet-1k in the train / val class-folder layout that timm and torchvision read.

Layout written (the ILSVRC2012 train tar extracted per class, and the validation images moved into class folders,
as the usual ``valprep.sh`` does)::

    root/
      train/<wnid>/<wnid>_<n>.JPEG
      val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG

The wnids are real ImageNet-1k synsets (from timm's ``imagenet_synsets.txt``), spread over the 1,000 classes. Quirks
of the real files are kept: one training file is a CMYK JPEG and one is a PNG under a ``.JPEG`` name (ILSVRC2012 has
22 CMYK files and ``n02105855_2933.JPEG``, a PNG), and one validation image is grey-scale; image sizes vary.

Content: class ``k`` is a real handwritten digit ``k % 10`` (in colour ``PALETTE[k // 10]``) at a random place and
size over a real photograph (:mod:`miil.core.miniature.render`); train images use the train digits and val images
the disjoint test digits, so validation accuracy measures generalisation to unseen handwriting.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from .build import build_miniature, generator_settings
from .render import PALETTE, render_single_digit_photo, save_image

__all__ = ["imagenet_synsets", "make_imagenet"]


@lru_cache(maxsize=1)
def imagenet_synsets() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k wnids in class-index order (timm's ``imagenet_synsets.txt``)."""
    text = (resources.files("timm.data") / "_info" / "imagenet_synsets.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def make_imagenet(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    num_classes: int = 10,
    train_per_class: int = 8,
    val_per_class: int = 4,
    min_size: int = 40,
    max_size: int = 80,
) -> Path:
    """Write a miniature ImageNet (see the module docstring for the layout) and return ``root``.

    Args:
        root: Output folder (absent, empty, or an earlier miniature).
        seed: Seed of everything drawn.
        num_classes: Classes (at most ``10 * len(PALETTE)``), real wnids spread over ImageNet-1k.
        train_per_class: Training images per class (at least 2 for the CMYK and PNG files).
        val_per_class: Validation images per class.
        min_size: Smallest image side in pixels.
        max_size: Largest image side in pixels.
    """
    params = generator_settings(locals())
    if not 1 <= num_classes <= 10 * len(PALETTE):
        raise ValueError(f"num_classes must be in 1..{10 * len(PALETTE)}, got {num_classes}")
    if train_per_class < 2 or val_per_class < 1:
        raise ValueError(f"need train_per_class >= 2 and val_per_class >= 1, got {train_per_class}, {val_per_class}")
    if not 8 <= min_size <= max_size:
        raise ValueError(f"need 8 <= min_size <= max_size, got {min_size}, {max_size}")
    synsets = imagenet_synsets()
    wnids = [synsets[(k * len(synsets)) // num_classes] for k in range(num_classes)]

    def size(rng: np.random.Generator) -> tuple[int, int]:
        return int(rng.integers(min_size, max_size + 1)), int(rng.integers(min_size, max_size + 1))

    def build(out: Path) -> None:
        rng = np.random.default_rng([seed, 0])
        val_numbers = iter(rng.choice(np.arange(1, 50_001), size=num_classes * val_per_class, replace=False).tolist())
        odd = {(0, 0): ("CMYK", "JPEG"), (num_classes // 2, 1): ("RGB", "PNG")}
        for k, wnid in enumerate(wnids):
            numbers = rng.choice(np.arange(1, 60_000), size=train_per_class, replace=False).tolist()
            for j, n in enumerate(numbers):
                pixels, _ = render_single_digit_photo(k, "train", rng, height=size(rng)[0], width=size(rng)[1])
                mode, fmt = odd.get((k, j), ("RGB", "JPEG"))
                save_image(pixels, out / "train" / wnid / f"{wnid}_{n}.JPEG", mode=mode, fmt=fmt)
            for j in range(val_per_class):
                height, width = size(rng)
                pixels, _ = render_single_digit_photo(k, "test", rng, height=height, width=width)
                mode = "L" if (k, j) == (num_classes - 1, 0) else "RGB"
                save_image(pixels, out / "val" / wnid / f"ILSVRC2012_val_{next(val_numbers):08d}.JPEG", mode=mode)

    return build_miniature(root, "imagenet", params, build)
