"""Miniature LVIS v1 in its real on-disk format, with real partial (federated) labels.

Paper: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss" (arXiv 2110.10955),
Section 5: LVIS (federated annotation). MS-COCO and OpenImages V6, which CSL shares with ML-Decoder, are written by
:func:`miil.core.miniature.make_coco2014` and :func:`miil.core.miniature.make_openimages` (re-exported here).

The images are mosaics of real handwritten digits over real photographs (:mod:`miil.core.miniature.render`); the
classes are the digits, so the labels are learnable, and the partial annotation follows each dataset's protocol, so
the unknown labels hide real positives as they do in the real sets. Train splits use the train digits, validation
splits the disjoint test digits. The generators write atomically, reuse a finished copy made with the same settings,
and give the same files for the same seed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from miil.core.data import plan_digit_mosaics
from miil.core.miniature import (
    OPENIMAGES_DIGIT_CLASSES,
    build_miniature,
    generator_settings,
    make_openimages,
    render_mosaic_photo,
    save_image,
)

__all__ = ["LVIS_DIGIT_NAMES", "OPENIMAGES_DIGIT_CLASSES", "make_lvis", "make_openimages"]

_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: LVIS names are snake_case synset lemmas.
LVIS_DIGIT_NAMES = tuple(f"digit_{w}" for w in _WORDS)


def make_lvis(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    train_images: int = 48,
    val_images: int = 24,
    decay: float = 0.75,
    negative_fraction: float = 0.4,
    grid: int = 3,
    cell: int = 10,
    scale: int = 3,
    max_digits: int = 3,
) -> Path:
    """Write a miniature LVIS v1 (annotation JSONs beside COCO-2017 image folders) and return ``root``.

    Layout written (the mmdetection arrangement; images are COCO-2017's)::

        root/
          annotations/lvis_v1_train.json
          annotations/lvis_v1_val.json
          train2017/<12-digit id>.jpg
          val2017/<12-digit id>.jpg

    The JSONs carry LVIS v1's fields: ``images`` without ``file_name`` (the path is the end of ``coco_url``), with
    ``neg_category_ids`` (verified absent) and ``not_exhaustive_category_ids`` (present, not all instances outlined);
    ``annotations`` (``area``, ``id``, ``segmentation``, ``image_id``, ``bbox``, ``category_id``; no ``iscrowd``);
    ``categories`` (``frequency`` r / c / f from the train image counts, ``id`` 1..C, ``synset``, ``image_count``,
    ``instance_count``, ``synonyms``, ``def``, ``name``). Classes are long-tailed (weight ``decay**c``), and, as in
    LVIS v1 whose validation images come from COCO train2017 as well as val2017, some validation images live in
    ``train2017/``.

    Args:
        root: Output folder (absent, empty, or an earlier miniature).
        seed: Seed of everything drawn.
        train_images: Images of ``lvis_v1_train.json``.
        val_images: Images of ``lvis_v1_val.json``.
        decay: Long-tail ratio of the class weights.
        negative_fraction: Share of each image's absent classes listed in ``neg_category_ids``.
        grid: Mosaic cells per side.
        cell: Cell side in digit pixels (>= 8).
        scale: Image pixels per digit pixel.
        max_digits: Most digits per image.
    """
    params = generator_settings(locals())

    def build(out: Path) -> None:
        rng = np.random.default_rng([seed, 1203])
        ids = iter(rng.choice(np.arange(1, 581_930), size=train_images + val_images, replace=False).tolist())
        ann_id = iter(range(1, 10**6))
        files = {}
        for name, n, digits in (("train", train_images, "train"), ("val", val_images, "test")):
            plans = plan_digit_mosaics(
                digits, n, grid=grid, cell=cell, max_digits=max_digits, decay=decay, seed=seed * 2 + (name == "val")
            )
            images, annotations = [], []
            for i, items in enumerate(plans):
                image_id = next(ids)
                folder = "train2017" if name == "train" or i % 4 == 0 else "val2017"
                pixels, boxes = render_mosaic_photo(items, digits, rng, side=grid * cell, scale=scale)
                save_image(pixels, out / folder / f"{image_id:012d}.jpg")
                present = sorted({b.label + 1 for b in boxes})
                absent = [c for c in range(1, 11) if c not in present]
                negatives = sorted(int(c) for c in absent if rng.random() < negative_fraction)
                not_exhaustive = [c for c in present if rng.random() < 0.2]
                height, width = pixels.shape[:2]
                images.append(
                    {
                        "date_captured": "2013-11-14 17:02:52",
                        "neg_category_ids": negatives,
                        "id": image_id,
                        "license": 4,
                        "height": height,
                        "width": width,
                        "flickr_url": f"http://farm{int(rng.integers(1, 10))}.staticflickr.com/miil/{image_id}.jpg",
                        "coco_url": f"http://images.cocodataset.org/{folder}/{image_id:012d}.jpg",
                        "not_exhaustive_category_ids": not_exhaustive,
                    }
                )
                for b in boxes:
                    x, y, w, h = (float(v) for v in (b.x, b.y, b.width, b.height))
                    annotations.append(
                        {
                            "area": w * h,
                            "id": next(ann_id),
                            "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
                            "image_id": image_id,
                            "bbox": [x, y, w, h],
                            "category_id": b.label + 1,
                        }
                    )
            files[name] = (images, annotations)
        train_images_of = [{a["image_id"] for a in files["train"][1] if a["category_id"] == c} for c in range(1, 11)]
        counts = [len(s) for s in train_images_of]
        order = np.argsort(counts, kind="stable").tolist()
        frequency = {}
        for rank, k in enumerate(order):  # LVIS: rare 1-10, common 11-100, frequent > 100 train images; scaled here
            frequency[k] = "r" if rank < 3 else ("c" if rank < 7 else "f")
        categories = [
            {
                "frequency": frequency[k],
                "id": k + 1,
                "synset": f"{_WORDS[k]}.n.02",
                "image_count": counts[k],
                "instance_count": sum(1 for a in files["train"][1] if a["category_id"] == k + 1),
                "synonyms": [LVIS_DIGIT_NAMES[k], _WORDS[k]],
                "def": f"the handwritten numeral {k}",
                "name": LVIS_DIGIT_NAMES[k],
            }
            for k in range(10)
        ]
        (out / "annotations").mkdir(parents=True, exist_ok=True)
        for name, (images, annotations) in files.items():
            data = {
                "info": {"description": "miil miniature of LVIS v1", "version": "1.0", "year": 2019},
                "annotations": annotations,
                "images": images,
                "licenses": [{"url": "http://creativecommons.org/licenses/by/2.0/", "id": 4, "name": "Attribution"}],
                "categories": categories,
            }
            (out / "annotations" / f"lvis_v1_{name}.json").write_text(json.dumps(data), encoding="utf-8")

    return build_miniature(root, "lvis_v1", params, build)
