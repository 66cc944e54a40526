"""Miniature OpenImages V6 in its released on-disk format, with real partial (human-verified) image labels.

Papers: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss" (arXiv 2110.10955),
Section 5.2, and "ML-Decoder: Scalable and Versatile Classification Head" (arXiv 2111.12933): both train on
OpenImages V6, whose images carry human-verified positive and negative labels, every other label unknown. Written
here because both miil-csl and miil-mldecoder read it (:mod:`miil.core.data.openimages`).

The images are mosaics of real handwritten digits over real photographs (:mod:`.render`); the classes are the digits,
so the labels are learnable, and the unknown labels hide real positives as they do in the real set. The train split
uses the train digits, the validation split the disjoint test digits.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..data.mosaic import plan_digit_mosaics
from .build import build_miniature, csv_text, generator_settings
from .render import render_mosaic_photo, save_image

__all__ = ["OPENIMAGES_DIGIT_CLASSES", "make_openimages"]

_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: ``(MID, display name)`` of the OpenImages miniature's classes (digit ``d`` is class ``d``).
OPENIMAGES_DIGIT_CLASSES = tuple((f"/m/0dgt{d}x", f"Digit {w}") for d, w in enumerate(_WORDS))
#: A verified label of a class that is not trainable, as the real label files have many of.
_NOT_TRAINABLE = ("/m/05s2s", "Plant")


def make_openimages(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    train_images: int = 48,
    val_images: int = 24,
    positive_verified: float = 0.8,
    negative_verified: float = 0.3,
    grid: int = 3,
    cell: int = 10,
    scale: int = 3,
    max_digits: int = 3,
) -> Path:
    """Write a miniature OpenImages V6 (official label files and the CSL ``data.csv`` layout) and return ``root``.

    Layout written::

        root/
          train/<ImageID>.jpg, validation/<ImageID>.jpg      16-hex-digit image ids
          oidv6-train-annotations-human-imagelabels.csv      ImageID,Source,LabelName,Confidence (1 / 0)
          validation-annotations-human-imagelabels.csv
          oidv6-class-descriptions.csv                       LabelName,DisplayName (all classes seen in labels)
          oidv6-classes-trainable.txt                        one trainable MID per line
          data.csv                                           the CSL/ASL layout: header, then image path, positive
                                                             MIDs, negative MIDs (Python list repr), split
          mid_to_classes.pth                                 {MID: display name} of the trainable classes

    Each image's digits are verified present with probability ``positive_verified`` and each absent digit verified
    absent with probability ``negative_verified``; every other label is unknown, as in the real files. A few
    verified labels belong to a class outside the trainable list (loaders drop and count them).

    Args:
        root: Output folder (absent, empty, or an earlier miniature).
        seed: Seed of everything drawn.
        train_images: Images of the train split.
        val_images: Images of the validation split.
        positive_verified: Chance that a present class is human-verified (else unknown).
        negative_verified: Chance that an absent class is human-verified as absent (else unknown).
        grid: Mosaic cells per side.
        cell: Cell side in digit pixels (>= 8).
        scale: Image pixels per digit pixel.
        max_digits: Most digits per image.
    """
    params = generator_settings(locals())

    def build(out: Path) -> None:
        rng = np.random.default_rng([seed, 6])
        mids = [mid for mid, _ in OPENIMAGES_DIGIT_CLASSES]
        csl_rows: list[list[object]] = [["path", "pos_labels", "neg_labels", "split"]]
        splits = (
            ("train", "oidv6-train-annotations-human-imagelabels.csv", train_images, "train", "train"),
            ("validation", "validation-annotations-human-imagelabels.csv", val_images, "test", "val"),
        )
        for index, (folder, label_file, n, digits, csl_split) in enumerate(splits):
            plans = plan_digit_mosaics(
                digits, n, grid=grid, cell=cell, max_digits=max_digits, balanced=True, seed=seed * 2 + index
            )
            rows: list[list[object]] = [["ImageID", "Source", "LabelName", "Confidence"]]
            for items in plans:
                image_id = rng.bytes(8).hex()
                pixels, boxes = render_mosaic_photo(items, digits, rng, side=grid * cell, scale=scale)
                save_image(pixels, out / folder / f"{image_id}.jpg")
                present = {b.label for b in boxes}
                positives = [mids[k] for k in sorted(present) if rng.random() < positive_verified]
                negatives = [mids[k] for k in range(10) if k not in present and rng.random() < negative_verified]
                labels = [(m, 1) for m in positives] + [(m, 0) for m in negatives]
                if rng.random() < 0.15:
                    labels.append((_NOT_TRAINABLE[0], int(rng.integers(2))))
                for mid, conf in sorted(labels):  # the official files list an image's labels by MID
                    source = "verification" if rng.random() < 0.7 else "crowdsource-verification"
                    rows.append([image_id, source, mid, conf])
                pos = [m for m, c in labels if c == 1]
                neg = [m for m, c in labels if c == 0]
                csl_rows.append([f"{folder}/{image_id}.jpg", str(pos), str(neg), csl_split])
            (out / label_file).write_text(csv_text(rows), encoding="utf-8")
        descriptions = [["LabelName", "DisplayName"], *map(list, OPENIMAGES_DIGIT_CLASSES), list(_NOT_TRAINABLE)]
        (out / "oidv6-class-descriptions.csv").write_text(csv_text(descriptions), encoding="utf-8")
        (out / "oidv6-classes-trainable.txt").write_text("".join(f"{m}\n" for m in mids), encoding="utf-8")
        (out / "data.csv").write_text(csv_text(csl_rows), encoding="utf-8")
        torch.save(dict(OPENIMAGES_DIGIT_CLASSES), out / "mid_to_classes.pth")

    return build_miniature(root, "openimages_v6", params, build)
