"""A miniature MS-COCO 2014 in the official on-disk format, for the COCO rows of ML-Decoder and CSL.

Layout written (as the official ``train2014.zip``, ``val2014.zip`` and ``annotations_trainval2014.zip`` extract)::

    root/
      train2014/COCO_train2014_000000xxxxxx.jpg
      val2014/COCO_val2014_000000xxxxxx.jpg
      annotations/instances_train2014.json
      annotations/instances_val2014.json

The instances files carry every field of the real ones: ``info``, ``licenses``, ``images`` (``license``,
``file_name``, ``coco_url``, ``height``, ``width``, ``date_captured``, ``flickr_url``, ``id``), ``annotations``
(``segmentation`` as polygons, or uncompressed RLE for crowd regions, ``area``, ``iscrowd``, ``image_id``, ``bbox``
as ``[x, y, w, h]``, ``category_id``, ``id``) and ``categories`` (``supercategory``, ``id``, ``name``). As in the real
files, category ids are not contiguous, image ids are large and listed out of order, a few images have no
annotation at all (val2014 has 367), one annotation per split is a crowd region, and one image per split is a
grey-scale JPEG.

Content: the images are mosaics of real handwritten digits over real photographs
(:mod:`miil.core.miniature.render`); the 10 categories are the digits (``"digit zero"`` ... ``"digit nine"``), and an
image's instances are its digits, so the image-level labels (the digits present) are learnable. Train images use the
train digits and val images the disjoint test digits.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..data.mosaic import plan_digit_mosaics
from .build import build_miniature, generator_settings
from .render import photo_background, render_mosaic_photo, save_image

__all__ = ["COCO_DIGIT_CATEGORIES", "make_coco2014"]

_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: ``(id, name)`` of the miniature's categories; the ids skip numbers as COCO's 1..90 do.
COCO_DIGIT_CATEGORIES = tuple(zip((1, 2, 3, 5, 8, 11, 13, 17, 22, 27), (f"digit {n}" for n in _NAMES)))
_LICENSES = [
    {"url": f"http://creativecommons.org/licenses/{code}/2.0/", "id": i, "name": f"{name} License"}
    for i, code, name in (
        (1, "by-nc-sa", "Attribution-NonCommercial-ShareAlike"),
        (2, "by-nc", "Attribution-NonCommercial"),
        (4, "by", "Attribution"),
    )
]


def _rle(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE of a binary mask: run lengths in column-major order, starting with a run of zeros."""
    flat = mask.flatten(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return runs if flat[0] == 0 else [0, *runs]


def _split(root: Path, split: str, *, num_images: int, unannotated: int, seed: int, digits_split: str, **mosaic):
    rng = np.random.default_rng([seed, 0 if digits_split == "train" else 1])
    grid, cell, scale = mosaic.pop("grid"), mosaic.pop("cell"), mosaic.pop("scale")
    plan_seed = seed * 2 + (digits_split != "train")
    plans = plan_digit_mosaics(digits_split, num_images, grid=grid, cell=cell, balanced=True, seed=plan_seed, **mosaic)
    plans += [[] for _ in range(unannotated)]
    total = len(plans)
    ids = rng.choice(np.arange(9, 581_930), size=total, replace=False).tolist()
    grey = int(rng.integers(num_images))  # one grey-scale image among the annotated ones
    crowd_image = (grey + 1) % num_images
    images, annotations = [], []
    ann_id = int(rng.integers(100_000, 900_000))
    side = grid * cell
    for i, (image_id, items) in enumerate(zip(ids, plans)):
        height = side * scale
        width = height + int(rng.choice([0, cell * scale, 2 * cell * scale]))
        if items:
            pixels, boxes = render_mosaic_photo(items, digits_split, rng, side=side, scale=scale, width=width)
        else:
            pixels, boxes = np.clip(photo_background(rng, height, width), 0, 255).astype(np.uint8), []
        name = f"COCO_{split}_{image_id:012d}.jpg"
        save_image(pixels, root / split / name, mode="L" if i == grey else "RGB")
        farm = int(rng.integers(1, 10))
        images.append(
            {
                "license": int(rng.choice([1, 2, 4])),
                "file_name": name,
                "coco_url": f"http://images.cocodataset.org/{split}/{name}",
                "height": height,
                "width": width,
                "date_captured": f"2013-11-{int(rng.integers(10, 26)):02d} {int(rng.integers(0, 24)):02d}:"
                f"{int(rng.integers(0, 60)):02d}:{int(rng.integers(0, 60)):02d}",
                "flickr_url": f"http://farm{farm}.staticflickr.com/{int(rng.integers(1000, 9000))}/"
                f"{int(rng.integers(10**9, 10**10))}_{int(rng.integers(16**9, 16**10)):010x}_z.jpg",
                "id": image_id,
            }
        )
        for k, box in enumerate(boxes):
            ann_id += int(rng.integers(1, 2000))
            x, y, w, h = (float(v) for v in (box.x, box.y, box.width, box.height))
            crowd = i == crowd_image and k == 0
            if crowd:
                mask = np.zeros((height, width), dtype=bool)
                mask[box.y : box.y + box.height, box.x : box.x + box.width] = True
                segmentation: object = {"counts": _rle(mask), "size": [height, width]}
            else:
                segmentation = [[x, y, x + w, y, x + w, y + h, x, y + h]]
            annotations.append(
                {
                    "segmentation": segmentation,
                    "area": w * h,
                    "iscrowd": int(crowd),
                    "image_id": image_id,
                    "bbox": [x, y, w, h],
                    "category_id": COCO_DIGIT_CATEGORIES[box.label][0],
                    "id": ann_id,
                }
            )
    order = rng.permutation(total).tolist()  # the official files do not list images by id
    data = {
        "info": {
            "description": "miil miniature of COCO 2014 (real handwritten digits over real photographs)",
            "url": "http://cocodataset.org",
            "version": "1.0",
            "year": 2014,
            "contributor": "miil",
            "date_created": "2017/09/01",
        },
        "images": [images[j] for j in order],
        "licenses": _LICENSES,
        "annotations": annotations,
        "categories": [{"supercategory": "digit", "id": cid, "name": name} for cid, name in COCO_DIGIT_CATEGORIES],
    }
    out = root / "annotations" / f"instances_{split}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data), encoding="utf-8")


def make_coco2014(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    train_images: int = 48,
    val_images: int = 24,
    unannotated_images: int = 2,
    grid: int = 3,
    cell: int = 10,
    scale: int = 3,
    min_digits: int = 1,
    max_digits: int = 3,
) -> Path:
    """Write a miniature COCO-2014 (see the module docstring for the layout) and return ``root``.

    Args:
        root: Output folder (absent, empty, or an earlier miniature).
        seed: Seed of everything drawn (same seed, same files).
        train_images: Annotated train2014 images.
        val_images: Annotated val2014 images.
        unannotated_images: Extra images without annotations, per split.
        grid: Mosaic cells per side.
        cell: Cell side in digit pixels (>= 8).
        scale: Image pixels per digit pixel (the images are ``grid * cell * scale`` high).
        min_digits: Fewest digits (instances) per annotated image.
        max_digits: Most digits per annotated image.
    """
    params = generator_settings(locals())
    mosaic = dict(grid=grid, cell=cell, scale=scale, min_digits=min_digits, max_digits=max_digits)

    def build(out: Path) -> None:
        for split, n, digits in (("train2014", train_images, "train"), ("val2014", val_images, "test")):
            _split(out, split, num_images=n, unannotated=unannotated_images, seed=seed, digits_split=digits, **mosaic)

    return build_miniature(root, "coco2014", params, build)
