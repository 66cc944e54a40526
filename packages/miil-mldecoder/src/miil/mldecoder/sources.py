"""Where each dataset format keeps a split: the defaults behind ``--data-root``, ``--*-split`` and ``--*-labels``.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933), experiments
on MS-COCO 2014, Pascal VOC 2007, NUS-WIDE (zero-shot), OpenImages V6 and ImageNet. A user points ``--data-root`` at
the dataset as it is distributed, and the format knows the rest:

==============  ===========================  ==================  ===============================================
format          --data-root                  splits (train, val) labels (default)
==============  ===========================  ==================  ===============================================
``coco``        ``coco/``                    train2014, val2014  ``annotations/instances_<split>.json``;
                                                                 images in ``<split>/``
``voc``         ``VOCdevkit/VOC2007``        trainval, test      ``ImageSets/Main/<split>.txt`` + Annotations
``nuswide``     the folder of ``data.csv``   train, val (rows)   ``data.csv``; images under the root
``openimages``  the V6 release folder        train, val          ``oidv6-train-annotations-human-imagelabels.csv``
                                                                 / ``validation-annotations-human-imagelabels
                                                                 .csv``, images in ``train/`` / ``validation/``;
                                                                 classes ``oidv6-classes-trainable.txt`` (or
                                                                 ``mid_to_classes.pth``); without the official
                                                                 file, the CSL / ASL ``data.csv`` (its rows)
``csv``         the images' folder           train, val          ``<split>.csv`` (miil multi-label CSV)
``folder``      ``root/<split>/<class>/``    train, val          class folders (single-label); without a
                                                                 ``train`` folder the root's class folders
==============  ===========================  ==================  ===============================================

Validation data is optional: when no validation flag is given and the format's default validation split is not
there, training runs without validation. Torch-free (the CLI resolves data before building anything).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from miil.core.errors import UserError
from miil.core.splits import (
    SplitRequest,
    coco_split_files,
    csv_split_files,
    openimages_split_files,
    require_file,
    resolve_split,
)

__all__ = ["DATA_FORMATS", "DEFAULT_SPLITS", "MULTI_LABEL_FORMATS", "DataSource", "resolve_source"]

DATA_FORMATS = ("coco", "voc", "nuswide", "openimages", "csv", "folder")
MULTI_LABEL_FORMATS = ("coco", "voc", "nuswide", "openimages", "csv")
DEFAULT_SPLITS = {
    "coco": ("train2014", "val2014"),
    "voc": ("trainval", "test"),
    "nuswide": ("train", "val"),
    "openimages": ("train", "val"),
    "csv": ("train", "val"),
    "folder": ("train", "val"),
}


@dataclass(frozen=True)
class DataSource:
    """One split of a dataset, resolved to files.

    Args:
        format: One of :data:`DATA_FORMATS`.
        root: The images' folder (VOC: the ``VOC20XX`` folder; folder format: the class folders' parent).
        labels: The annotation file (COCO JSON, CSV, NUS-WIDE ``data.csv``, OpenImages labels CSV); None for VOC
            and image folders.
        split: The split name (VOC list name, NUS-WIDE or OpenImages ``data.csv`` row split, COCO / folder
            sub-folder; None for an official OpenImages labels file, which holds one split).
        data_root: ``--data-root`` as given (stored with a run, so ``validate`` can find the data again).
        classes: OpenImages: the class list file (its order is the target order).
    """

    format: str
    root: str | None
    labels: str | None = None
    split: str | None = None
    data_root: str | None = None
    classes: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return f"{self.format} data {self.labels or self.root}" + (f" (split {self.split})" if self.split else "")


def _coco(req: SplitRequest) -> DataSource:
    images, ann = coco_split_files(req)
    return DataSource(req.format, str(images), str(ann), req.split, str(req.root))


def _voc(req: SplitRequest) -> DataSource:
    if req.labels is not None:
        raise UserError(
            f"{req.flag('labels')} is not used with --data-format voc: the labels are the Annotations/*.xml files; "
            f"choose the image list with {req.flag('split')}"
        )
    root = req.root
    listing = root / "ImageSets" / "Main" / f"{req.split}.txt"
    if not listing.is_file():
        years = sorted(p for p in [*root.glob("VOC20*"), *root.glob("VOCdevkit/VOC20*")] if p.is_dir())
        hint = f" (pass --data-root {years[0]})" if years else ""
        raise UserError(
            f"VOC split list {listing} does not exist; --data-root is the year's folder (VOCdevkit/VOC2007) and "
            f"{req.flag('split')} a list of its ImageSets/Main{hint}"
        )
    return DataSource(req.format, str(root), None, req.split, str(root))


def _nuswide(req: SplitRequest) -> DataSource:
    csv = require_file(req.labels or req.root / "data.csv", "NUS-WIDE list", f"pass data.csv with {req.flag('labels')}")
    return DataSource(req.format, str(req.root), str(csv), req.split, str(req.root))


def _openimages(req: SplitRequest) -> DataSource:
    # the release's official per-split files first (ML-Decoder's reference reads no data.csv), else data.csv
    found = openimages_split_files(
        req, prefer="human", classes_hint="put oidv6-classes-trainable.txt (or mid_to_classes.pth) in --data-root"
    )
    return DataSource(
        req.format, str(found.images), str(found.labels), found.row_split, str(req.root), str(found.classes)
    )


def _csv(req: SplitRequest) -> DataSource:
    labels, images = csv_split_files(req)
    return DataSource(req.format, str(images), str(labels), req.split, str(req.root or images))


def _folder(req: SplitRequest) -> DataSource:
    # root/<split>/<class>/<image>; the root's own class folders when it has no split folder
    if req.labels is not None:
        raise UserError(
            f"{req.flag('labels')} is not used with --data-format folder (the class folders are the labels)"
        )
    split_dir = req.root / req.split
    if split_dir.is_dir():
        return DataSource(req.format, str(split_dir), None, req.split, str(req.root))
    if req.given or req.which == "val":
        raise UserError(f"image folder {split_dir} does not exist; {req.flag('split')} names a folder of --data-root")
    return DataSource(req.format, str(req.root), None, None, str(req.root))


_RESOLVERS = {
    "coco": _coco,
    "voc": _voc,
    "nuswide": _nuswide,
    "openimages": _openimages,
    "csv": _csv,
    "folder": _folder,
}


def resolve_source(
    fmt: str,
    data_root: str | os.PathLike | None,
    split: str | None,
    labels: str | os.PathLike | None,
    *,
    which: str,
    optional: bool = False,
) -> DataSource | None:
    """One split of ``--data-format`` / ``--data-root`` / ``--<which>-split`` / ``--<which>-labels`` (``which``:
    "train" or "val"), by :func:`miil.core.splits.resolve_split` with the formats above; ``optional`` validation data
    is None where the format's default split is absent and no flag names one. A ``csv`` split may go without a root.
    """
    return resolve_split(
        fmt,
        data_root,
        split,
        labels,
        which=which,
        defaults=DEFAULT_SPLITS,
        resolvers=_RESOLVERS,
        optional=optional,
        without_root=("csv",),
    )
