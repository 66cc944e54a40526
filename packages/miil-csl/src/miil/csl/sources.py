"""Where each dataset of the CSL paper keeps a split: the defaults of ``--data-root``, ``--*-split``, ``--*-labels``.

Paper: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss" (arXiv 2110.10955),
Section 5: MS-COCO 2014 (simulated partial labels), OpenImages V6 and LVIS. ``--data-root`` is the dataset's top
folder as it is distributed, and the format knows the rest:

==============  ===================================  =================  ============================================
format          --data-root                          splits             labels (default)
==============  ===================================  =================  ============================================
``coco``        ``coco/``                            train2014, val2014 ``annotations/instances_<split>.json``;
                                                                        images in ``<split>/``
``openimages``  the folder of ``data.csv`` or the   train, val         ``data.csv`` (the CSL / ASL list; its rows'
                V6 release                                              split column), else the release's
                                                                        ``oidv6-train-`` / ``validation-annotations-
                                                                        human-imagelabels.csv`` with images in
                                                                        ``train/`` / ``validation/``; classes:
                                                                        ``mid_to_classes.pth``, else
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

from dataclasses import asdict, dataclass
from typing import Any

from miil.core.splits import SplitRequest, coco_split_files, csv_split_files, openimages_split_files, require_file
from miil.core.splits import resolve_split as resolve_data_split

__all__ = ["DATA_FORMATS", "DEFAULT_SPLITS", "DataSpec", "SplitSource", "describe", "resolve_split", "spec_from_dict"]

DATA_FORMATS = ("coco", "openimages", "lvis", "csv", "mosaic")
DEFAULT_SPLITS = {
    "coco": ("train2014", "val2014"),
    "openimages": ("train", "val"),
    "lvis": ("train", "val"),
    "csv": ("train", "val"),
    "mosaic": ("train", "test"),
}


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


def _coco(req: SplitRequest) -> SplitSource:
    images, ann = coco_split_files(req)
    return SplitSource(req.format, req.split, str(ann), str(images), data_root=str(req.root))


def _lvis(req: SplitRequest) -> SplitSource:
    ann = req.labels or req.root / "annotations" / f"lvis_v1_{req.split}.json"
    require_file(ann, "LVIS annotation file", f"pass it with {req.flag('labels')}")
    return SplitSource(req.format, req.split, str(ann), str(req.root), data_root=str(req.root))


def _openimages(req: SplitRequest, classes: str | None) -> SplitSource:
    # data.csv (the CSL / ASL list this paper trained on) first, else the release's official per-split files
    found = openimages_split_files(req, classes, prefer="csl")
    return SplitSource(
        req.format, req.split, str(found.labels), str(found.images), str(found.classes), found.row_split, str(req.root)
    )


def _csv(req: SplitRequest) -> SplitSource:
    labels, images = csv_split_files(req)
    return SplitSource(req.format, req.split, str(labels), str(images), data_root=str(req.root or images))


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
    resolvers = {
        "coco": _coco,
        "openimages": lambda req: _openimages(req, spec.classes),
        "lvis": _lvis,
        "csv": _csv,
        "mosaic": lambda req: SplitSource(req.format, req.split),
    }
    return resolve_data_split(
        fmt,
        spec.data_root,
        spec.train_split if which == "train" else spec.val_split,
        spec.train_labels if which == "train" else spec.val_labels,
        which=which,
        defaults=DEFAULT_SPLITS,
        resolvers=resolvers,
        optional=optional,
        without_root=("mosaic", "csv"),
    )


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
