"""A miniature ImageNet-21K release (extracted class folders), the input of ``miil in21k preprocess``.

Paper: "ImageNet-21K Pretraining for the Masses" (arXiv 2104.10972), Sec. 3: the fall11 / winter21 releases are one
tar of per-class tars; extracted, each class is a folder of ``<wnid>_<n>.JPEG`` files, which the preprocessing
reduces (small classes dropped, the first files of each class in name order set aside for validation, images
resized). The already-processed ImageNet-21K-P folders (``imagenet21k_train/``, ``imagenet21k_val/``) are what that
preprocessing writes.

Layout written::

    root/<wnid>/<wnid>_<n>.JPEG

The wnids are real ImageNet-21K-P classes present in both shipped semantic trees (fall11 and winter21), two parents
with four children each (``dog`` and ``domestic_cat``), so the semantic softmax has two levels to learn, plus one
small class with fewer images that the class-size threshold drops. File numbers have different digit counts, so name
order differs from numeric order, as in the release; one file is a CMYK JPEG and one a PNG under a ``.JPEG`` name.
Class ``k`` of :data:`MINIATURE_CLASSES` shows real handwritten digit ``k`` over a real photograph
(:mod:`miil.core.miniature.render`); the small class shows digit 0 in another colour.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from miil.core.miniature import build_miniature, generator_settings, render_single_digit_photo, save_image

__all__ = ["MINIATURE_CLASSES", "SMALL_CLASS", "make_imagenet21k"]

#: The miniature's wnids: dog, four of its hyponyms, domestic cat, four of its hyponyms (digit k shows class k).
MINIATURE_CLASSES = (
    "n02084071", "n01322604", "n02084732", "n02084861", "n02085272",
    "n02121808", "n02122298", "n02122430", "n02122510", "n02122725",
)  # fmt: skip
#: A class with fewer images than the others (toy dog), for the small-class threshold.
SMALL_CLASS = "n02085374"


def make_imagenet21k(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    images_per_class: int = 12,
    small_class_images: int = 3,
    min_size: int = 48,
    max_size: int = 96,
) -> Path:
    """Write a miniature extracted ImageNet-21K release (see the module docstring) and return ``root``.

    ``miil in21k preprocess ROOT OUT --small-class-threshold T --val-per-class V --variant none`` with
    ``small_class_images <= T < images_per_class`` keeps the ten classes and drops :data:`SMALL_CLASS`.

    Args:
        root: Output folder (absent, empty, or an earlier miniature).
        seed: Seed of everything drawn.
        images_per_class: Images of each of the ten classes.
        small_class_images: Images of the small class.
        min_size: Smallest image side in pixels.
        max_size: Largest image side in pixels.
    """
    params = generator_settings(locals())
    if images_per_class < 2 or small_class_images < 1 or small_class_images >= images_per_class:
        raise ValueError(
            f"need 1 <= small_class_images < images_per_class (>= 2), got {small_class_images}, {images_per_class}"
        )

    def build(out: Path) -> None:
        rng = np.random.default_rng([seed, 21841])
        odd = {(0, 0): ("CMYK", "JPEG"), (5, 1): ("RGB", "PNG")}
        classes = [(k, wnid, images_per_class) for k, wnid in enumerate(MINIATURE_CLASSES)]
        for k, wnid, n in [*classes, (10, SMALL_CLASS, small_class_images)]:
            # 1- to 5-digit numbers: byte-wise name order is not numeric order
            numbers = sorted({int(10 ** rng.uniform(0, 5)) for _ in range(4 * n)})
            numbers = rng.permutation(numbers)[:n].tolist()
            for j, number in enumerate(numbers):
                height, width = (int(rng.integers(min_size, max_size + 1)) for _ in range(2))
                pixels, _ = render_single_digit_photo(k, "train", rng, height=height, width=width)
                mode, fmt = odd.get((k, j), ("RGB", "JPEG"))
                save_image(pixels, out / wnid / f"{wnid}_{number}.JPEG", mode=mode, fmt=fmt)

    return build_miniature(root, "imagenet21k", params, build)
