"""Where each dataset of the CSL paper keeps a split: the defaults of ``--data-root``, ``--*-split``, ``--*-labels``.

Paper: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss" (arXiv 2110.10955),
Section 5: MS-COCO 2014 (simulated partial labels), OpenImages V6 and LVIS. ``--data-root`` is the dataset's top
folder as it is distributed, and the format knows the rest:

==============  ===================================  =================  ============================================
format          --data-root                          splits             labels (default)
==============  ===================================  =================  ============================================
``coco``        ``coco/``                            train2014, val2014 ``annotations/instances_<split>.json``;
                                                                        images in ``<split>/``
``openimages``  the folder of ``data.csv``           train, val         ``data.csv`` (the CSL / ASL list; its rows'
                                                                        split column); an official
                                                                        ``*-human-imagelabels.csv`` reads images
                                                                        from ``<split>/`` (val: ``validation/``);
                                                                        classes: ``mid_to_classes.pth``, else
                                                                        ``oidv6-classes-trainable.txt``
``lvis``        the folder of ``annotations/``       train, val         ``annotations/lvis_v1_<split>.json``;
                                                                        images ``train2017/``, ``val2017/``
``csv``         the images' folder                   train, val         ``<split>.csv`` (miil multi-label CSV)
``mosaic``      (none: the embedded digit mosaics)
==============  ===================================  =================  ============================================

Validation data is optional: without a validation flag and without the format's default validation split, training
runs without validation. Torch-free, so the command-line parsers can read the defaults.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from miil.core.errors import UserError

__all__ = ["DATA_FORMATS", "DEFAULT_SPLITS", "DataSpec", "SplitSource", "describe", "resolve_split", "spec_from_dict"]

DATA_FORMATS = ("coco", "openimages", "lvis", "csv", "mosaic")
DEFAULT_SPLITS = {
    "coco": ("train2014", "val2014"),
    "openimages": ("train", "val"),
    "lvis": ("train", "val"),
    "csv": ("train", "val"),
    "mosaic": ("train", "test"),
}
_OPENIMAGES_CLASSES = ("mid_to_classes.pth", "oidv6-classes-trainable.txt")
_HUMAN_HEADER = ["ImageID", "Source", "LabelName", "Confidence"]


@dataclass(frozen=True)
class DataSpec:
    """The data flags of a run (the dataset's format comes from the recipe or ``--data-format``).

    Args:
        data_root: ``--data-root``: the dataset's top folder.
        train_split: ``--train-split`` (None: the format's).
        val_split: ``--val-split`` (None: the format's).
        train_labels: ``--train-labels`` (None: where the format keeps them).
        val_labels: ``--val-labels``.
        classes: ``--classes``: OpenImages class list (trainable MIDs ``.txt``, descriptions ``.csv`` or
            ``mid_to_classes.pth``; default: the one in the data root).
        strict: ``--strict``: stop at the first unreadable image.
    """

    data_root: str | None = None
    train_split: str | None = None
    val_split: str | None = None
    train_labels: str | None = None
    val_labels: str | None = None
    classes: str | None = None
    strict: bool = False


@dataclass(frozen=True)
class SplitSource:
    """One split resolved to files.

    Args:
        format: One of :data:`DATA_FORMATS`.
        split: The split name (COCO image folder, row split of OpenImages' ``data.csv``, LVIS / CSV name).
        labels: The labels file (None for the mosaics).
        images: The folder the labels' image paths are relative to (None for the mosaics).
        classes: OpenImages: the class list file.
        row_split: OpenImages ``data.csv``: keep the rows of this split (None: the file is one split).
        data_root: ``--data-root`` as given.
    """

    format: str
    split: str
    labels: str | None = None
    images: str | None = None
    classes: str | None = None
    row_split: str | None = None
    data_root: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _file(path: Path, what: str, hint: str) -> str:
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist; {hint}")
    return str(path)


def _is_human_layout(path: Path) -> bool:
    with open(path, newline="", encoding="utf-8-sig") as f:
        first = next(csv.reader(f), [])
    return [h.strip() for h in first] == _HUMAN_HEADER


def resolve_split(fmt: str, spec: DataSpec, which: str, *, optional: bool = False) -> SplitSource | None:
    """Resolve one split (``which``: "train" or "val") of ``fmt`` from the data flags in ``spec``.

    Args:
        fmt: The data format.
        spec: The data flags.
        which: "train" or "val" (names the flags in messages and picks the default split).
        optional: Return None instead of failing when no flag of this split was given and the format's default
            location does not exist (validation data is optional).

    Raises:
        UserError: A flag names something that does not exist, or a required part is missing; the message names the
            flag to use.
    """
    if fmt not in DATA_FORMATS:
        raise UserError(f"--data-format {fmt!r} is not one of {', '.join(DATA_FORMATS)}")
    split = spec.train_split if which == "train" else spec.val_split
    labels = spec.train_labels if which == "train" else spec.val_labels
    given = split is not None or labels is not None
    name = split if split is not None else DEFAULT_SPLITS[fmt][0 if which == "train" else 1]
    if fmt == "mosaic":
        return SplitSource(fmt, name)
    if spec.data_root is None and not (fmt == "csv" and labels is not None):
        raise UserError(f"--data-format {fmt} needs --data-root (the dataset's top folder, as distributed)")
    root = Path(spec.data_root) if spec.data_root is not None else None
    if root is not None and not root.is_dir():
        raise UserError(f"--data-root {root} is not a folder")
    try:
        return _resolve(fmt, spec, root, name, labels, which)
    except UserError:
        if optional and not given:
            return None
        raise


def _resolve(fmt: str, spec: DataSpec, root: Path | None, name: str, labels: Any, which: str) -> SplitSource:
    data_root = str(root) if root is not None else None
    flag = f"--{which}-labels"
    if fmt == "coco":
        from miil.core.data.coco import coco_split_files  # miil.core.data imports torch: not at parser time

        assert root is not None
        images, ann = coco_split_files(root, name, labels, which=which)
        return SplitSource(fmt, name, str(ann), str(images), data_root=data_root)
    if fmt == "lvis":
        assert root is not None
        ann = Path(labels) if labels is not None else root / "annotations" / f"lvis_v1_{name}.json"
        _file(ann, "LVIS annotation file", f"pass it with {flag}")
        return SplitSource(fmt, name, str(ann), str(root), data_root=data_root)
    if fmt == "openimages":
        assert root is not None
        given_classes = Path(spec.classes) if spec.classes else None
        found = [root / c for c in _OPENIMAGES_CLASSES if (root / c).is_file()]
        classes = given_classes or (found[0] if found else None)
        if classes is None:
            raise UserError(
                f"OpenImages needs its class list: --classes FILE (none of {', '.join(_OPENIMAGES_CLASSES)} in {root})"
            )
        _file(classes, "OpenImages class list", "pass it with --classes")
        path = Path(labels) if labels is not None else root / "data.csv"
        _file(path, "OpenImages labels file", f"pass data.csv or an official image-labels CSV with {flag}")
        if _is_human_layout(path):  # official files: one per split, images in the split's folder
            folders = [root / name] + ([root / "validation"] if name == "val" else [])
            images = next((f for f in folders if f.is_dir()), None)
            if images is None:
                raise UserError(f"OpenImages image folder {folders[0]} does not exist; set --{which}-split")
            return SplitSource(fmt, name, str(path), str(images), str(classes), None, data_root)
        return SplitSource(fmt, name, str(path), str(root), str(classes), name, data_root)
    # csv: <root>/<split>.csv, image paths relative to the root (or to the CSV's folder without --data-root)
    path = Path(labels) if labels is not None else (root / f"{name}.csv" if root is not None else None)
    if path is None:
        raise UserError(f"--data-format csv needs {flag} (a multi-label CSV) or --data-root")
    _file(path, "multi-label CSV", f"pass it with {flag}")
    images = root if root is not None else path.parent
    return SplitSource(fmt, name, str(path), str(images), data_root=data_root or str(images))


def spec_from_dict(values: dict[str, Any] | None) -> DataSpec:
    """A :class:`DataSpec` from its stored JSON form (unknown keys of older runs are ignored)."""
    names = set(DataSpec.__dataclass_fields__)
    return DataSpec(**{k: v for k, v in (values or {}).items() if k in names})


def describe(source: SplitSource) -> str:
    """How messages name a split's data."""
    if source.format == "mosaic":
        return f"the embedded digit mosaics ({source.split})"
    return f"{source.format} data {source.labels}" + (
        f" (rows of split {source.row_split})" if source.row_split else ""
    )
