"""Where each dataset format keeps a split: the defaults behind ``--data-root``, ``--*-split`` and ``--*-labels``.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933), experiments
on MS-COCO 2014, Pascal VOC 2007, NUS-WIDE (zero-shot) and ImageNet. A user points ``--data-root`` at the dataset
as it is distributed, and the format knows the rest:

============  ===========================  ======================  =============================================
format        --data-root                  splits (train, val)     labels (default)
============  ===========================  ======================  =============================================
``coco``      ``coco/``                    train2014, val2014      ``annotations/instances_<split>.json``;
                                                                   images in ``<split>/``
``voc``       ``VOCdevkit/VOC2007``        trainval, test          ``ImageSets/Main/<split>.txt`` + Annotations
``nuswide``   the folder of ``data.csv``   train, val (rows)       ``data.csv``; images under the root
``csv``       the images' folder           train, val              ``<split>.csv`` (miil multi-label CSV)
``folder``    ``root/<split>/<class>/``    train, val              class folders (single-label); without a
                                                                   ``train`` folder the root's class folders
============  ===========================  ======================  =============================================

Validation data is optional: when no validation flag is given and the format's default validation split is not
there, training runs without validation. Torch-free (the CLI resolves data before building anything).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from miil.core.errors import UserError

__all__ = ["DATA_FORMATS", "DEFAULT_SPLITS", "MULTI_LABEL_FORMATS", "DataSource", "resolve_source"]

DATA_FORMATS = ("coco", "voc", "nuswide", "csv", "folder")
MULTI_LABEL_FORMATS = ("coco", "voc", "nuswide", "csv")
DEFAULT_SPLITS = {
    "coco": ("train2014", "val2014"),
    "voc": ("trainval", "test"),
    "nuswide": ("train", "val"),
    "csv": ("train", "val"),
    "folder": ("train", "val"),
}


@dataclass(frozen=True)
class DataSource:
    """One split of a dataset, resolved to files.

    Args:
        format: One of :data:`DATA_FORMATS`.
        root: The images' folder (VOC: the ``VOC20XX`` folder; folder format: the class folders' parent).
        labels: The annotation file (COCO JSON, CSV, NUS-WIDE ``data.csv``); None for VOC and image folders.
        split: The split name (VOC list name, NUS-WIDE row split, COCO / folder sub-folder).
        data_root: ``--data-root`` as given (stored with a run, so ``validate`` can find the data again).
    """

    format: str
    root: str | None
    labels: str | None = None
    split: str | None = None
    data_root: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return f"{self.format} data {self.labels or self.root}" + (f" (split {self.split})" if self.split else "")


def _require(path: Path, what: str, hint: str) -> None:
    if not path.exists():
        raise UserError(f"{what} {path} does not exist; {hint}")


def resolve_source(
    fmt: str,
    data_root: str | os.PathLike | None,
    split: str | None,
    labels: str | os.PathLike | None,
    *,
    which: str,
    optional: bool = False,
) -> DataSource | None:
    """Resolve one split of ``--data-format`` / ``--data-root`` / ``--<which>-split`` / ``--<which>-labels``.

    Args:
        fmt: The data format.
        data_root: ``--data-root`` (may be None for ``csv`` when the labels file is given).
        split: ``--<which>-split`` (None: the format's default).
        labels: ``--<which>-labels`` (None: where the format keeps them).
        which: "train" or "val" (names the flags in messages and picks the default split).
        optional: Return None instead of failing when no flag of this split was given and the format's default
            location does not exist (validation data is optional).

    Raises:
        UserError: A flag names something that does not exist, or a required part is missing; the message names the
            flag to use.
    """
    if fmt not in DATA_FORMATS:
        raise UserError(f"--data-format {fmt!r} is not one of {', '.join(DATA_FORMATS)}")
    given = split is not None or labels is not None
    name = split if split is not None else DEFAULT_SPLITS[fmt][0 if which == "train" else 1]
    if data_root is None and not (fmt == "csv" and labels is not None):
        raise UserError(f"--data-format {fmt} needs --data-root (the dataset's top folder, as distributed)")
    root = Path(data_root) if data_root is not None else None
    if root is not None and not root.is_dir():
        raise UserError(f"--data-root {root} is not a folder")
    try:
        return _resolve(fmt, root, name, labels, which, given)
    except UserError:
        if optional and not given:
            return None
        raise


def _resolve(fmt: str, root: Path | None, name: str, labels: Any, which: str, given: bool) -> DataSource | None:
    data_root = str(root) if root is not None else None
    if fmt == "coco":
        from miil.core.data.coco import coco_split_files  # miil.core.data imports torch: not at parser time

        assert root is not None
        images, ann = coco_split_files(root, name, labels, which=which)
        return DataSource(fmt, str(images), str(ann), name, data_root)
    if fmt == "voc":
        assert root is not None
        if labels is not None:
            raise UserError(
                f"--{which}-labels is not used with --data-format voc: the labels are the Annotations/*.xml files; "
                f"choose the image list with --{which}-split"
            )
        listing = root / "ImageSets" / "Main" / f"{name}.txt"
        if not listing.is_file():
            years = sorted(p.name for p in [*root.glob("VOC20*"), *root.glob("VOCdevkit/VOC20*")] if p.is_dir())
            hint = f" (this folder holds {', '.join(years)}: pass --data-root {root}/.../{years[0]})" if years else ""
            raise UserError(
                f"VOC split list {listing} does not exist; --data-root is the year's folder (VOCdevkit/VOC2007) and "
                f"--{which}-split a list of ImageSets/Main{hint}"
            )
        return DataSource(fmt, str(root), None, name, data_root)
    if fmt == "nuswide":
        assert root is not None
        csv = Path(labels) if labels is not None else root / "data.csv"
        _require(csv, "NUS-WIDE list", f"pass the reference's data.csv with --{which}-labels")
        return DataSource(fmt, str(root), str(csv), name, data_root)
    if fmt == "csv":
        csv = Path(labels) if labels is not None else (root / f"{name}.csv" if root is not None else None)
        if csv is None:
            raise UserError(f"--data-format csv needs --{which}-labels (a multi-label CSV) or --data-root")
        _require(csv, "multi-label CSV", f"pass it with --{which}-labels")
        images = root if root is not None else csv.parent
        return DataSource(fmt, str(images), str(csv), name, data_root or str(images))
    # folder: root/<split>/<class>/<image>; the root's own class folders when it has no split folder
    assert root is not None
    if labels is not None:
        raise UserError(f"--{which}-labels is not used with --data-format folder (the class folders are the labels)")
    split_dir = root / name
    if split_dir.is_dir():
        return DataSource(fmt, str(split_dir), None, name, data_root)
    if given:
        raise UserError(f"image folder {split_dir} does not exist; --{which}-split names a folder of --data-root")
    if which == "train":
        return DataSource(fmt, str(root), None, None, data_root)
    raise UserError(f"no validation folder {split_dir}")
