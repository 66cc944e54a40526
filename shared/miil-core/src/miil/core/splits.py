"""From ``--data-format``, ``--data-root``, ``--<split>-split`` and ``--<split>-labels`` to the files of one split.

Not part of a paper. A user points ``--data-root`` at a dataset as it is distributed; each package registers, per
format, the split names its release uses and a resolver that finds the split's files (COCO's
``annotations/instances_<split>.json`` beside ``<split>/``, a CSV per split, ...). :func:`resolve_split` does what
is common: the default split name, the checks of the root, error messages that name the flag to use, and optional
validation data (no flag given and the format's default validation split absent: ``None``). Torch-free, so parsers
can list the defaults.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .errors import UserError

__all__ = [
    "OPENIMAGES_CLASS_FILES",
    "OPENIMAGES_HUMAN_HEADER",
    "OpenImagesSplit",
    "SplitRequest",
    "coco_split_files",
    "csv_split_files",
    "is_openimages_human_file",
    "openimages_human_labels",
    "openimages_split_files",
    "require_file",
    "resolve_split",
]

T = TypeVar("T")


@dataclass(frozen=True)
class SplitRequest:
    """What a format's resolver gets: the data flags of one split, with the defaults applied.

    Args:
        format: ``--data-format``.
        root: ``--data-root`` (None only for the formats that may go without it).
        split: ``--<which>-split``, or the format's default split name.
        labels: ``--<which>-labels``, or None (the resolver knows where the format keeps them).
        which: "train" or "val".
        given: The user gave ``--<which>-split`` or ``--<which>-labels``.
    """

    format: str
    root: Path | None
    split: str
    labels: Path | None
    which: str
    given: bool

    def flag(self, role: str) -> str:
        """The flag of this split's ``role`` ("split" or "labels"): ``--val-labels``."""
        return f"--{self.which}-{role}"


def require_file(path: str | os.PathLike, what: str, hint: str) -> Path:
    """``path`` if it is a file, else a :class:`UserError` naming it and ``hint`` (the flag to use)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist; {hint}")
    return path


def resolve_split(
    fmt: str,
    data_root: str | os.PathLike | None,
    split: str | None,
    labels: str | os.PathLike | None,
    *,
    which: str,
    defaults: Mapping[str, tuple[str, str]],
    resolvers: Mapping[str, Callable[[SplitRequest], T]],
    optional: bool = False,
    without_root: Collection[str] = (),
) -> T | None:
    """Resolve one split of a dataset from the dialect's data flags.

    Args:
        fmt: ``--data-format``.
        data_root: ``--data-root``.
        split: ``--<which>-split`` (None: ``defaults[fmt]``).
        labels: ``--<which>-labels`` (None: where the format keeps them).
        which: "train" or "val".
        defaults: Format -> (train split, val split) of its release.
        resolvers: Format -> function of a :class:`SplitRequest` returning the package's description of the split.
        optional: Return None instead of failing when no flag of this split was given and its default location does
            not exist (validation data is optional).
        without_root: Formats that need no ``--data-root`` (embedded data; a CSV named by ``--<which>-labels``).

    Raises:
        UserError: An unknown format, a missing root, or what the resolver raises (naming the flag to use).
    """
    if which not in ("train", "val"):
        raise ValueError(f"which is 'train' or 'val', got {which!r}")
    if fmt not in resolvers:
        raise UserError(f"--data-format {fmt!r} is not one of {', '.join(resolvers)}")
    given = split is not None or labels is not None
    name = split if split is not None else defaults[fmt][0 if which == "train" else 1]
    if data_root is None and fmt not in without_root:
        raise UserError(f"--data-format {fmt} needs --data-root (the dataset's top folder, as distributed)")
    root = Path(data_root) if data_root is not None else None
    if root is not None and not root.is_dir():
        raise UserError(f"--data-root {root} is not a folder")
    request = SplitRequest(fmt, root, name, Path(labels) if labels is not None else None, which, given)
    try:
        return resolvers[fmt](request)
    except UserError:
        if optional and not given:
            return None
        raise


def coco_split_files(request: SplitRequest) -> tuple[Path, Path]:
    """The image folder and the instances file of a split of a COCO release as it is distributed.

    The layout is ``root/<split>/`` beside ``root/annotations/instances_<split>.json`` (``coco/train2014`` and
    ``coco/annotations/instances_train2014.json``); ``--<which>-labels`` replaces the layout's file.

    Raises:
        UserError: The folder or the file does not exist (the message names the flag to use).
    """
    if request.root is None:
        raise UserError(f"--data-format {request.format} needs --data-root (the folder of {request.split}/)")
    images = request.root / request.split
    ann = request.labels or request.root / "annotations" / f"instances_{request.split}.json"
    if not images.is_dir():
        raise UserError(
            f"COCO image folder {images} does not exist: the layout is {request.root}/{request.split}/ beside "
            f"{request.root}/annotations/; set --data-root or {request.flag('split')}"
        )
    return images, require_file(ann, "COCO annotation file", f"pass it with {request.flag('labels')}")


def csv_split_files(request: SplitRequest) -> tuple[Path, Path]:
    """A split in CSV form: ``root/<split>.csv`` (or ``--<which>-labels``), with image paths relative to the root
    (without ``--data-root``: to the CSV's folder).

    Returns:
        ``(labels file, images folder)``.
    """
    if request.labels is None and request.root is None:
        raise UserError(f"--data-format {request.format} needs {request.flag('labels')} (a CSV file) or --data-root")
    path = request.labels or request.root / f"{request.split}.csv"  # type: ignore[operator]
    require_file(path, f"{request.format} labels file", f"pass it with {request.flag('labels')}")
    return path, request.root if request.root is not None else path.parent


# ------------------------------------------------------------------------------------------------- OpenImages V6

#: Header of the official ``*-annotations-human-imagelabels.csv`` files (one row per human-verified image label).
OPENIMAGES_HUMAN_HEADER = ["ImageID", "Source", "LabelName", "Confidence"]
#: Class lists looked for in the data root, in this order: the CSL / ASL reference's file, then the release's.
OPENIMAGES_CLASS_FILES = ("mid_to_classes.pth", "oidv6-classes-trainable.txt")
_OPENIMAGES_HUMAN_FILES = {
    "train": "oidv6-train-annotations-human-imagelabels.csv",
    "val": "validation-annotations-human-imagelabels.csv",
    "validation": "validation-annotations-human-imagelabels.csv",
    "test": "test-annotations-human-imagelabels.csv",
}
_OPENIMAGES_LAYOUT = (
    "the OpenImages V6 release layout is ROOT/oidv6-train-annotations-human-imagelabels.csv with ROOT/train/, "
    "ROOT/validation-annotations-human-imagelabels.csv with ROOT/validation/ and ROOT/oidv6-classes-trainable.txt "
    "(or the CSL / ASL ROOT/data.csv and ROOT/mid_to_classes.pth, image paths relative to ROOT)"
)


def is_openimages_human_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` starts with the header of an official human-verified image-labels CSV."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        first = next(csv.reader(f), [])
    return [h.strip() for h in first] == OPENIMAGES_HUMAN_HEADER


def openimages_human_labels(split: str) -> str:
    """File name of a split's official human-verified labels (``val`` and ``validation`` name the same split)."""
    return _OPENIMAGES_HUMAN_FILES.get(split, f"{split}-annotations-human-imagelabels.csv")


@dataclass(frozen=True)
class OpenImagesSplit:
    """The files of one OpenImages V6 split.

    Args:
        labels: An official ``*-human-imagelabels.csv`` or the CSL / ASL ``data.csv``.
        images: The folder the image paths are relative to (the split's folder for an official file).
        classes: The class list (its order is the target order).
        row_split: ``data.csv``: keep the rows of this split; None for an official file (one file per split).
    """

    labels: Path
    images: Path
    classes: Path
    row_split: str | None


def openimages_split_files(
    request: SplitRequest,
    classes: str | os.PathLike | None = None,
    *,
    prefer: str = "human",
    classes_hint: str = "pass it with --classes",
) -> OpenImagesSplit:
    """The files of a split of OpenImages V6 under ``--data-root`` (used by miil-csl and miil-mldecoder).

    Without ``--<which>-labels`` the labels are the split's official file (``oidv6-train-annotations-human-
    imagelabels.csv``, ``validation-...``; images in ``train/``, ``validation/``) or ``data.csv`` (the CSL / ASL list,
    its rows of the split; image paths relative to the root), whichever exists, ``prefer`` ("human" or "csl") first.
    A file named by ``--<which>-labels`` is read in the layout its header shows.

    Args:
        request: The split's data flags.
        classes: The class list file; None: the first of :data:`OPENIMAGES_CLASS_FILES` in the root.
        prefer: Which default labels file wins when both exist: ``"human"`` (the release) or ``"csl"`` (``data.csv``).
        classes_hint: How the user names a class list (the package's flag) in error messages.

    Raises:
        UserError: A file or folder is missing; the message names it, the expected layout and the flag to use.
    """
    if prefer not in ("human", "csl"):
        raise ValueError(f"prefer is 'human' or 'csl', got {prefer!r}")
    root = request.root
    if root is None:
        raise UserError(f"--data-format {request.format} needs --data-root (the OpenImages V6 release folder)")
    if classes is not None:
        class_file = require_file(classes, "OpenImages class list", classes_hint)
    else:
        class_file = next((root / c for c in OPENIMAGES_CLASS_FILES if (root / c).is_file()), None)
        if class_file is None:
            raise UserError(
                f"OpenImages class list not found: none of {', '.join(OPENIMAGES_CLASS_FILES)} in {root}; "
                f"{_OPENIMAGES_LAYOUT}; {classes_hint}"
            )
    if request.labels is not None:
        labels = require_file(request.labels, "OpenImages labels file", _OPENIMAGES_LAYOUT)
    else:
        official, listing = root / openimages_human_labels(request.split), root / "data.csv"
        candidates = (official, listing) if prefer == "human" else (listing, official)
        labels = next((c for c in candidates if c.is_file()), None)
        if labels is None:
            raise UserError(
                f"OpenImages labels of split {request.split!r} not found: neither {candidates[0]} nor {candidates[1]} "
                f"exists; {_OPENIMAGES_LAYOUT}; set --data-root, {request.flag('split')} or {request.flag('labels')}"
            )
    if not is_openimages_human_file(labels):
        return OpenImagesSplit(labels, root, class_file, request.split)
    # an official file covers one split; its images are <ImageID>.jpg in the split's folder
    folders = [root / request.split] + ([root / "validation"] if request.split == "val" else [])
    images = next((f for f in folders if f.is_dir()), None)
    if images is None:
        raise UserError(
            f"OpenImages image folder {folders[-1]} does not exist (the images of {labels.name}); "
            f"{_OPENIMAGES_LAYOUT}; set {request.flag('split')}"
        )
    return OpenImagesSplit(labels, images, class_file, None)
