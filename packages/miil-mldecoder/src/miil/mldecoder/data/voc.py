"""Pascal VOC 2007 / 2012 multi-label classification from the ``VOCdevkit`` layout.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933), appendix
(Pascal-VOC 2007, 20 classes, mAP). Images are listed in ``ImageSets/Main/<split>.txt`` and labelled from their
``Annotations/<id>.xml`` files: a class is positive when the image has a non-difficult instance of it. A class whose
only instances are marked *difficult* is ignored (target -1), as in the VOC classification protocol, unless
``difficult`` says otherwise.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import torch

from miil.core.data import ImageTargetsDataset, UnreadablePolicy, resolve_under_root

__all__ = ["VOC_CLASSES", "VOCDataset", "read_voc_split"]

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip

_DIFFICULT = {"ignore": -1.0, "positive": 1.0, "negative": 0.0}


def _parse_annotation(path: Path, difficult: float) -> torch.Tensor:
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise FileNotFoundError(f"VOC annotation file {path} does not exist") from None
    except ET.ParseError as err:
        raise ValueError(f"VOC annotation file {path} is not valid XML: {err}") from None
    present = torch.zeros(len(VOC_CLASSES), dtype=torch.bool)
    difficult_only = torch.zeros(len(VOC_CLASSES), dtype=torch.bool)
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in VOC_CLASSES:
            raise ValueError(f"{path}: unknown object class {name!r}; VOC classes are {', '.join(VOC_CLASSES)}")
        k = VOC_CLASSES.index(name)
        if (obj.findtext("difficult") or "0").strip() == "1":
            difficult_only[k] = True
        else:
            present[k] = True
    target = torch.where(difficult_only & ~present, torch.tensor(difficult), torch.tensor(0.0))
    target[present] = 1.0
    return target


def read_voc_split(root: str | os.PathLike, split: str, *, difficult: str = "ignore") -> tuple[list[str], torch.Tensor]:
    """Image ids and ``[N, 20]`` targets of one VOC split.

    Args:
        root: The year's folder, e.g. ``VOCdevkit/VOC2007``.
        split: Name of a list in ``ImageSets/Main`` ("train", "val", "trainval", "test").
        difficult: Target for classes present only as *difficult* instances: "ignore" (-1), "positive" or "negative".
    """
    if difficult not in _DIFFICULT:
        raise ValueError(f"difficult must be one of {sorted(_DIFFICULT)}, got {difficult!r}")
    root = Path(root)
    listing = root / "ImageSets" / "Main" / f"{split}.txt"
    if not listing.is_file():
        raise FileNotFoundError(f"VOC split list {listing} does not exist (expected VOCdevkit/VOC20XX as the root)")
    ids = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
    if not ids:
        raise ValueError(f"VOC split list {listing} is empty")
    targets = torch.stack([_parse_annotation(root / "Annotations" / f"{i}.xml", _DIFFICULT[difficult]) for i in ids])
    return ids, targets


class VOCDataset(ImageTargetsDataset):
    """Pascal VOC images with multi-label targets (1 positive, 0 negative, -1 difficult-only).

    Args:
        root: The year's folder, e.g. ``VOCdevkit/VOC2007``.
        split: "train", "val", "trainval" or "test".
        transform: Applied to the RGB PIL image.
        difficult: See :func:`read_voc_split`.
        strict: Raise on unreadable images instead of skipping them with a warning.
    """

    classes = list(VOC_CLASSES)

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "trainval",
        *,
        transform: Callable | None = None,
        difficult: str = "ignore",
        strict: bool = False,
    ):
        self.root = Path(root)
        self.ids, self.targets = read_voc_split(self.root, split, difficult=difficult)
        self.paths = [str(resolve_under_root(self.root / "JPEGImages", f"{i}.jpg")) for i in self.ids]
        self.transform = transform
        self.policy = UnreadablePolicy(strict=strict)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={self.root}, images={len(self)})"
