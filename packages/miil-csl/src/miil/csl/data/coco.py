"""MS-COCO 2014 as a multi-label classification set, from the official ``instances_*2014.json`` files.

Paper: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss" (arXiv 2110.10955),
Section 5.1 (simulated partial annotation of MS-COCO); reference ``CocoDetection`` in
``src/helper_functions/helper_functions.py``. An image is positive for every category with at least one instance
annotation and negative for the other 80 - k; classes follow the order of ``categories`` in the file. As in the
reference (and every MIIL COCO result), images without any annotation are left out by default (val2014: 40,137 of
40,504 images). No pycocotools needed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import torch

from .base import MultiLabelImageDataset

__all__ = ["CocoMultiLabelDataset", "read_coco_labels"]


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"COCO annotation file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if not isinstance(data, dict) or missing:
        raise ValueError(f"{path} is not a COCO instances file: it lacks {missing or 'a top-level object'}")
    return data


def read_coco_labels(
    annotation_file: str | os.PathLike, *, keep_unannotated_images: bool = False
) -> tuple[list[str], list[int], torch.Tensor, list[str]]:
    """Image-level labels from a COCO instances JSON.

    Args:
        annotation_file: ``instances_train2014.json`` / ``instances_val2014.json`` (or any COCO instances file).
        keep_unannotated_images: Keep images without annotations (all labels 0); the reference drops them.

    Returns:
        ``(file_names, image_ids, targets [N, C] in {0, 1}, class_names)``.
    """
    path = Path(annotation_file)
    data = _load_json(path)
    cat_index: dict[int, int] = {}
    names: list[str] = []
    for cat in data["categories"]:
        if "id" not in cat or "name" not in cat:
            raise ValueError(f"{path}: category {cat!r} lacks 'id' or 'name'")
        if cat["id"] in cat_index:
            raise ValueError(f"{path}: category id {cat['id']} appears twice")
        cat_index[cat["id"]] = len(names)
        names.append(str(cat["name"]))
    image_order: dict[int, int] = {}
    files: list[str] = []
    ids: list[int] = []
    for img in data["images"]:
        if "id" not in img or "file_name" not in img:
            raise ValueError(f"{path}: image entry {img!r} lacks 'id' or 'file_name'")
        image_order[img["id"]] = len(files)
        files.append(str(img["file_name"]))
        ids.append(int(img["id"]))
    targets = torch.zeros(len(files), len(names), dtype=torch.float32)
    annotated = torch.zeros(len(files), dtype=torch.bool)
    for ann in data["annotations"]:
        try:
            row = image_order[ann["image_id"]]
            col = cat_index[ann["category_id"]]
        except KeyError as err:
            raise ValueError(
                f"{path}: annotation {ann.get('id', '?')} refers to unknown {err.args[0]!r} "
                f"(image_id={ann.get('image_id')!r}, category_id={ann.get('category_id')!r})"
            ) from None
        targets[row, col] = 1.0
        annotated[row] = True
    if not keep_unannotated_images:
        keep = annotated.nonzero().flatten().tolist()
        files = [files[i] for i in keep]
        ids = [ids[i] for i in keep]
        targets = targets[annotated]
    return files, ids, targets, names


class CocoMultiLabelDataset(MultiLabelImageDataset):
    """MS-COCO (2014) images with their 80 image-level labels; ``targets`` is a dense tensor (simulation-ready).

    Args:
        annotation_file: COCO instances JSON.
        image_root: Folder holding the images named in the JSON (e.g. ``coco/train2014``).
        transform: Applied to the RGB PIL image.
        keep_unannotated_images: Keep images without annotations.
        strict: Raise on unreadable images instead of skipping them.
    """

    def __init__(
        self,
        annotation_file: str | os.PathLike,
        image_root: str | os.PathLike,
        *,
        transform: Callable | None = None,
        keep_unannotated_images: bool = False,
        strict: bool = False,
    ):
        files, ids, targets, names = read_coco_labels(annotation_file, keep_unannotated_images=keep_unannotated_images)
        super().__init__(
            image_root, files, targets, names, transform=transform, strict=strict, source=os.fspath(annotation_file)
        )
        self.image_ids = ids
