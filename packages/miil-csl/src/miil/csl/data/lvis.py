"""LVIS federated annotations as partial multi-label targets 1 / 0 / -1.

Paper: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss" (arXiv 2110.10955),
Section 5 (LVIS, 1,203 classes). LVIS is annotated federatedly (Gupta et al., "LVIS: A Dataset for Large Vocabulary
Instance Segmentation", CVPR 2019): in each image, the categories with instance annotations are present (1), the
``neg_category_ids`` were verified absent (0), and every other category was not asked about (-1). Categories in
``not_exhaustive_category_ids`` are present but not all their instances were outlined; as image-level labels they
stay positive by default (``not_exhaustive="positive"``; one listed without any instance becomes -1), or all become
-1 with ``not_exhaustive="unknown"``. The reference code released no LVIS loader.

Image paths: ``file_name`` when the entry has one (LVIS v0.5), else the last two parts of ``coco_url``
(``train2017/000000391895.jpg``, LVIS v1), relative to the image root.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch

from miil.core.data import MultiLabelImageDataset

__all__ = ["LVISFederatedDataset", "read_lvis_labels"]

_NOT_EXHAUSTIVE = ("positive", "unknown")


def _image_path(img: dict, path: Path) -> str:
    if img.get("file_name"):
        return str(img["file_name"])
    url = img.get("coco_url")
    if not url:
        raise ValueError(f"{path}: image {img.get('id')!r} has neither 'file_name' nor 'coco_url'")
    parts = [p for p in urlparse(url).path.split("/") if p]
    return "/".join(parts[-2:])


def read_lvis_labels(
    annotation_file: str | os.PathLike, *, not_exhaustive: str = "positive"
) -> tuple[list[str], list[int], torch.Tensor, list[str], list[str]]:
    """Image-level 1 / 0 / -1 labels from an LVIS annotation JSON.

    Args:
        annotation_file: ``lvis_v1_train.json`` / ``lvis_v1_val.json`` (or v0.5).
        not_exhaustive: ``"positive"`` or ``"unknown"``: how ``not_exhaustive_category_ids`` are labelled.

    Returns:
        ``(image paths, image ids, int8 targets [N, C], class names, class frequency groups "r"/"c"/"f")``.
    """
    if not_exhaustive not in _NOT_EXHAUSTIVE:
        raise ValueError(f"not_exhaustive must be one of {_NOT_EXHAUSTIVE}, got {not_exhaustive!r}")
    path = Path(annotation_file)
    if not path.is_file():
        raise FileNotFoundError(f"LVIS annotation file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict) or any(k not in data for k in ("images", "annotations", "categories")):
        raise ValueError(f"{path} is not an LVIS annotation file (needs images, annotations and categories)")
    cat_index: dict[int, int] = {}
    names, freqs = [], []
    for cat in data["categories"]:
        if cat["id"] in cat_index:
            raise ValueError(f"{path}: category id {cat['id']} appears twice")
        cat_index[cat["id"]] = len(names)
        names.append(str(cat["name"]))
        freqs.append(str(cat.get("frequency", "")))

    def columns(ids: list, img_id: int, what: str) -> list[int]:
        try:
            return [cat_index[c] for c in ids]
        except KeyError as err:
            raise ValueError(f"{path}: image {img_id} lists unknown category {err.args[0]!r} in {what}") from None

    row_of: dict[int, int] = {}
    files, img_ids = [], []
    for img in data["images"]:
        row_of[img["id"]] = len(files)
        files.append(_image_path(img, path))
        img_ids.append(int(img["id"]))
    # int8 keeps the 100k x 1,203 LVIS train labels at ~120 MB.
    targets = np.full((len(files), len(names)), -1, dtype=np.int8)
    for img in data["images"]:
        row = row_of[img["id"]]
        targets[row, columns(img.get("neg_category_ids", []), img["id"], "neg_category_ids")] = 0
    for ann in data["annotations"]:
        row = row_of.get(ann["image_id"])
        if row is None:
            raise ValueError(f"{path}: annotation {ann.get('id')} refers to unknown image {ann['image_id']!r}")
        col = columns([ann["category_id"]], ann["image_id"], "annotations")[0]
        if targets[row, col] == 0:
            raise ValueError(
                f"{path}: image {ann['image_id']} has an instance of category {ann['category_id']} that its "
                "neg_category_ids mark as absent"
            )
        targets[row, col] = 1
    if not_exhaustive == "unknown":
        for img in data["images"]:
            cols = columns(img.get("not_exhaustive_category_ids", []), img["id"], "not_exhaustive_category_ids")
            targets[row_of[img["id"]], cols] = -1
    return files, img_ids, torch.from_numpy(targets), names, freqs


class LVISFederatedDataset(MultiLabelImageDataset):
    """LVIS images with federated 1 / 0 / -1 image-level labels; ``targets`` is a dense int8 tensor.

    Args:
        annotation_file: LVIS annotation JSON.
        image_root: Folder holding ``train2017/`` and ``val2017/`` (v1) or the v0.5 images.
        not_exhaustive: ``"positive"`` or ``"unknown"`` (see the module docstring).
        transform: Applied to the RGB PIL image.
        strict: Raise on unreadable images instead of skipping them.
    """

    def __init__(
        self,
        annotation_file: str | os.PathLike,
        image_root: str | os.PathLike,
        *,
        not_exhaustive: str = "positive",
        transform: Callable | None = None,
        strict: bool = False,
    ):
        files, ids, targets, names, freqs = read_lvis_labels(annotation_file, not_exhaustive=not_exhaustive)
        super().__init__(
            image_root, files, targets, names, transform=transform, strict=strict, source=os.fspath(annotation_file)
        )
        self.image_ids = ids
        self.frequency = freqs
