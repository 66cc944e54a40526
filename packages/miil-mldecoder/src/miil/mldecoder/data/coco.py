"""MS-COCO 2014 multi-label classification from the detection ``instances_*.json`` annotation files.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933), experiments
(MS-COCO 2014: 82,081 training and 40,504 validation images, 80 classes, mAP). An image's target for a class is 1 when
the image has at least one instance of it, else 0.

Changed from the reference loader: it reads the JSON directly (no pycocotools), keeps images without annotations
(all-negative targets; the reference lists only images that have annotations, so its validation set has 40,137 of
the 40,504 images), and builds the targets directly as class presence (the reference first fills 3 x 80 area buckets
and takes their maximum, which gives the same presence vector).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from miil.core.data import ImageTargetsDataset, UnreadablePolicy, resolve_under_root

__all__ = ["CocoMultiLabelDataset", "read_coco_instances"]


def _require(obj: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ValueError(f"{where}: missing required field {key!r}")
    value = obj[key]
    if not isinstance(value, kind):
        raise ValueError(f"{where}: field {key!r} must be a {kind.__name__}, got {type(value).__name__}")
    return value


def read_coco_instances(path: str | os.PathLike) -> tuple[list[str], list[str], torch.Tensor]:
    """Class names, image file names and ``[N, C]`` presence targets from a COCO ``instances`` JSON file.

    Classes are ordered by category id (the usual 80-class order). Every image in ``images`` is returned, in file
    order, including images without annotations.

    Args:
        path: ``instances_train2014.json``, ``instances_val2014.json`` or any file in the COCO format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"COCO annotation file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"COCO annotation file {path} is not valid JSON: {err}") from None
    where = str(path)
    categories = _require(data, "categories", list, where)
    images = _require(data, "images", list, where)
    annotations = data.get("annotations", [])
    if not isinstance(annotations, list):
        raise ValueError(f"{where}: field 'annotations' must be a list")
    cats = []
    for i, cat in enumerate(categories):
        cats.append(
            (
                _require(cat, "id", int, f"{where}: categories[{i}]"),
                _require(cat, "name", str, f"{where}: categories[{i}]"),
            )
        )
    cats.sort()
    cat_index = {cid: k for k, (cid, _) in enumerate(cats)}
    if len(cat_index) != len(cats):
        raise ValueError(f"{where}: duplicate category ids")
    if not cats:
        raise ValueError(f"{where}: no categories")
    img_index: dict[int, int] = {}
    files = []
    for i, img in enumerate(images):
        iid = _require(img, "id", int, f"{where}: images[{i}]")
        if iid in img_index:
            raise ValueError(f"{where}: images[{i}] repeats image id {iid}")
        img_index[iid] = len(files)
        files.append(_require(img, "file_name", str, f"{where}: images[{i}]"))
    targets = torch.zeros(len(files), len(cats))
    for i, ann in enumerate(annotations):
        iid = _require(ann, "image_id", int, f"{where}: annotations[{i}]")
        cid = _require(ann, "category_id", int, f"{where}: annotations[{i}]")
        if iid not in img_index:
            raise ValueError(f"{where}: annotations[{i}] refers to image id {iid}, which is not in 'images'")
        if cid not in cat_index:
            raise ValueError(f"{where}: annotations[{i}] refers to category id {cid}, which is not in 'categories'")
        targets[img_index[iid], cat_index[cid]] = 1.0
    return [name for _, name in cats], files, targets


class CocoMultiLabelDataset(ImageTargetsDataset):
    """COCO images with multi-label presence targets.

    Args:
        root: Image folder (e.g. ``train2014/``); ``file_name`` entries are relative to it and may not leave it.
        annotation_file: The ``instances_*.json`` file.
        transform: Applied to the RGB PIL image.
        strict: Raise on unreadable images instead of skipping them with a warning.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        annotation_file: str | os.PathLike,
        *,
        transform: Callable | None = None,
        strict: bool = False,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"COCO image folder {self.root} does not exist")
        self.classes, files, self.targets = read_coco_instances(annotation_file)
        self.paths = []
        for name in files:
            try:
                self.paths.append(str(resolve_under_root(self.root, name)))
            except ValueError as err:
                raise ValueError(f"{annotation_file}: {err}") from None
        self.transform = transform
        self.policy = UnreadablePolicy(strict=strict)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={self.root}, images={len(self)}, classes={len(self.classes)})"
