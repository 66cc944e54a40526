"""MS-COCO 2014 as a multi-label classification set, read from the official ``instances_*2014.json`` files.

Used by ML-Decoder ("ML-Decoder: Scalable and Versatile Classification Head", arXiv 2111.12933; COCO-2014: 82,081
training and 40,504 validation images, 80 classes) and CSL ("Multi-label Classification with Partial Annotations
using Class-aware Selective Loss", arXiv 2110.10955, Section 5.1: simulated partial annotation of COCO). Both reference
repositories share one ``CocoDetection`` helper, whose protocol is kept: an image is positive for every category with
at least one instance annotation (crowd annotations included) and negative for the others; classes follow the order
of ``categories`` in the file (id order in the official files); images without any annotation are left out (val2014:
40,137 of 40,504 images, the set every MIIL COCO number is measured on) unless ``keep_unannotated_images``. The
reference builds 3 x 80 area buckets and takes their maximum, which gives the same presence vector; no pycocotools is
needed here. ``targets`` is a dense ``[N, C]`` tensor that CSL's partial-label simulations replace in place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .datasets import ImageTargetsDataset, resolve_under_root
from .unreadable import UnreadablePolicy

__all__ = ["CocoLabels", "CocoMultiLabelDataset", "read_coco_labels"]


@dataclass
class CocoLabels:
    """Image-level labels of a COCO instances file.

    Args:
        file_names: Image paths relative to the image folder, in the file's ``images`` order.
        image_ids: COCO image ids, one per file.
        targets: Float32 ``[N, C]`` presence targets in {0, 1}.
        classes: Category names, in target order.
        category_ids: COCO category ids, in target order.
    """

    file_names: list[str]
    image_ids: list[int]
    targets: torch.Tensor
    classes: list[str]
    category_ids: list[int]


def _field(obj: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ValueError(f"{where}: missing required field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{where}: field {key!r} must be a {kind.__name__}, got {type(value).__name__}")
    return value


def read_coco_labels(annotation_file: str | os.PathLike, *, keep_unannotated_images: bool = False) -> CocoLabels:
    """Image-level presence labels from a COCO instances JSON.

    Args:
        annotation_file: ``instances_train2014.json`` / ``instances_val2014.json`` (or any COCO instances file).
        keep_unannotated_images: Keep images without annotations (all targets 0); the reference drops them.
    """
    path = Path(annotation_file)
    if not path.is_file():
        raise FileNotFoundError(f"COCO annotation file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"COCO annotation file {path} is not valid JSON: {err}") from None
    where = str(path)
    if not isinstance(data, dict):
        raise ValueError(f"{where} is not a COCO instances file: expected a JSON object with images and categories")
    categories = _field(data, "categories", list, where)
    images = _field(data, "images", list, where)
    annotations = data.get("annotations", [])
    if not isinstance(annotations, list):
        raise ValueError(f"{where}: field 'annotations' must be a list")
    if not categories:
        raise ValueError(f"{where}: no categories")
    cat_index: dict[int, int] = {}
    names: list[str] = []
    for i, cat in enumerate(categories):
        cid = _field(cat, "id", int, f"{where}: categories[{i}]")
        if cid in cat_index:
            raise ValueError(f"{where}: categories[{i}] repeats category id {cid}")
        cat_index[cid] = len(names)
        names.append(_field(cat, "name", str, f"{where}: categories[{i}]"))
    img_index: dict[int, int] = {}
    files: list[str] = []
    for i, img in enumerate(images):
        iid = _field(img, "id", int, f"{where}: images[{i}]")
        if iid in img_index:
            raise ValueError(f"{where}: images[{i}] repeats image id {iid}")
        img_index[iid] = len(files)
        files.append(_field(img, "file_name", str, f"{where}: images[{i}]"))
    targets = torch.zeros(len(files), len(names), dtype=torch.float32)
    for i, ann in enumerate(annotations):
        iid = _field(ann, "image_id", int, f"{where}: annotations[{i}]")
        cid = _field(ann, "category_id", int, f"{where}: annotations[{i}]")
        if iid not in img_index:
            raise ValueError(f"{where}: annotations[{i}] refers to image id {iid}, which is not in 'images'")
        if cid not in cat_index:
            raise ValueError(f"{where}: annotations[{i}] refers to category id {cid}, which is not in 'categories'")
        targets[img_index[iid], cat_index[cid]] = 1.0
    ids = list(img_index)
    if not keep_unannotated_images:
        keep = targets.sum(1) > 0
        rows = keep.nonzero().flatten().tolist()
        files, ids, targets = [files[r] for r in rows], [ids[r] for r in rows], targets[keep]
    return CocoLabels(files, ids, targets, names, list(cat_index))


class CocoMultiLabelDataset(ImageTargetsDataset):
    """COCO images with their image-level multi-label targets (80 classes for COCO-2014).

    Args:
        root: Image folder (e.g. ``coco/train2014``); ``file_name`` entries are relative to it and may not leave it.
        annotation_file: The ``instances_*.json`` file (e.g. ``coco/annotations/instances_train2014.json``).
        transform: Applied to the RGB PIL image.
        keep_unannotated_images: Keep images without annotations (all-negative targets); the reference drops them.
        strict: Raise on unreadable images instead of skipping them with a warning.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        annotation_file: str | os.PathLike,
        *,
        transform: Callable | None = None,
        keep_unannotated_images: bool = False,
        strict: bool = False,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"COCO image folder {self.root} does not exist (expected e.g. coco/train2014 next to "
                "coco/annotations/instances_train2014.json)"
            )
        self.annotation_file = Path(annotation_file)
        labels = read_coco_labels(self.annotation_file, keep_unannotated_images=keep_unannotated_images)
        self.classes = labels.classes
        self.category_ids = labels.category_ids
        self.image_ids = labels.image_ids
        self.file_names = labels.file_names
        self.targets = labels.targets
        self.paths = []
        for name in labels.file_names:
            try:
                self.paths.append(str(resolve_under_root(self.root, name)))
            except ValueError as err:
                raise ValueError(f"{self.annotation_file}: {err}") from None
        self.transform = transform
        self.policy = UnreadablePolicy(strict=strict)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={self.root}, images={len(self)}, classes={len(self.classes)})"
