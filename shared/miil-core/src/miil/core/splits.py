"""From ``--data-format``, ``--data-root``, ``--<split>-split`` and ``--<split>-labels`` to the files of one split.

Not part of a paper. A user points ``--data-root`` at a dataset as it is distributed; each package registers, per
format, the split names its release uses and a resolver that finds the split's files (COCO's
``annotations/instances_<split>.json`` beside ``<split>/``, a CSV per split, ...). :func:`resolve_split` does what
is common: the default split name, the checks of the root, error messages that name the flag to use, and optional
validation data (no flag given and the format's default validation split absent: ``None``). Torch-free, so parsers
can list the defaults.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .errors import UserError

__all__ = ["SplitRequest", "coco_split_files", "csv_split_files", "require_file", "resolve_split"]

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
