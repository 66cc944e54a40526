"""OpenImages V6 with its partial (positive / negative / not annotated) image-level labels, mapped to 1 / 0 / -1.

Paper: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss" (arXiv 2110.10955),
Section 5.2: OpenImages V6, 9,605 trainable classes; every image has human-verified positive and negative labels
and the rest are not annotated. ML-Decoder (arXiv 2111.12933) trains on the same labels. Two label layouts are read:

* ``csl``: the CSL / ASL ``data.csv``, one row per image: image path, the list of positive class ids (MIDs), the list
  of negative MIDs and (optionally) the split name; the lists may be Python-style (``['/m/01g317', '/m/09j2d']``) or
  separated by ``;`` or spaces. A header row is recognised and skipped.
* ``human``: the official ``oidv6-*-annotations-human-imagelabels.csv`` (``ImageID,Source,LabelName,Confidence``,
  one row per verified label; confidence 1 = positive, 0 = negative); images are ``<ImageID>.jpg`` under the root.

The class list (its order is the target order) comes from ``oidv6-classes-trainable.txt`` (one MID per line), a
class-descriptions CSV (``LabelName,DisplayName``) or the reference's ``mid_to_classes.pth`` (read without
unpickling objects). MIDs that are not in the class list are dropped and counted. Classes are keyed by MID, since
OpenImages display names are not unique. Labels are stored sparsely (one positive and one negative list per image).
"""

from __future__ import annotations

import csv
import os
import re
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..io import load_file
from ..splits import OPENIMAGES_HUMAN_HEADER, is_openimages_human_file
from .partial import MultiLabelImageDataset, SparseLabels

__all__ = ["OPENIMAGES_V6_TRAINABLE_CLASSES", "OpenImagesDataset", "read_openimages_classes", "read_openimages_labels"]

OPENIMAGES_V6_TRAINABLE_CLASSES = 9605

_MID_SPLIT = re.compile(r"[\s,;|]+")


def read_openimages_classes(path: str | os.PathLike) -> tuple[list[str], dict[str, str]]:
    """Read an OpenImages class list.

    Args:
        path: ``*.txt`` (one MID per line), ``*.csv`` (``MID,display name`` rows, header optional) or ``*.pth`` /
            ``*.pkl`` (a ``{MID: name}`` dict, as the reference's ``mid_to_classes.pth``; opened with
            :func:`miil.core.io.load_file`, which runs no pickled code).

    Returns:
        ``(mids, names)``: the MIDs in file order and a MID -> display-name mapping (empty for ``.txt`` files).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"OpenImages class list {path} does not exist")
    names: dict[str, str] = {}
    mids: list[str] = []
    suffix = path.suffix.lower()
    if suffix in (".pth", ".pt", ".pkl", ".pickle"):
        obj = load_file(path, what="OpenImages class list")
        if not isinstance(obj, Mapping) or not all(isinstance(k, str) for k in obj):
            raise ValueError(f"{path} must hold a dict of MID -> class name, got {type(obj).__name__}")
        for mid, name in obj.items():
            mids.append(mid.strip())
            names[mid.strip()] = str(name).strip().strip("'\"")
    elif suffix == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as f:
            for line_no, row in enumerate(csv.reader(f), start=1):
                if not row or not row[0].strip():
                    continue
                if line_no == 1 and not row[0].strip().startswith("/"):
                    continue  # header, e.g. LabelName,DisplayName
                if len(row) < 2:
                    raise ValueError(f"{path}:{line_no}: expected 'MID,display name', got {row}")
                mids.append(row[0].strip())
                names[row[0].strip()] = row[1].strip()
    else:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                mids.append(line.strip())
    dupes = sorted(m for m, n in Counter(mids).items() if n > 1)
    if dupes:
        raise ValueError(f"{path}: MIDs listed more than once: {dupes[:10]}")
    if not mids:
        raise ValueError(f"{path}: no classes found")
    return mids, names


def _parse_mid_list(cell: str) -> list[str]:
    text = cell.strip().strip("[]()")
    return [m.strip("'\" ") for m in _MID_SPLIT.split(text) if m.strip("'\" ")]


def _looks_like_mids(cell: str) -> bool:
    items = _parse_mid_list(cell)
    return not cell.strip() or cell.strip() in ("[]", "()") or (bool(items) and items[0].startswith("/"))


def _read_csl_layout(path: Path, split: str | None) -> tuple[list[str], list[list[str]], list[list[str]]]:
    images, positives, negatives = [], [], []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            if len(row) < 3:
                raise ValueError(
                    f"{path}:{reader.line_num}: expected 'image,positive MIDs,negative MIDs[,split]', got {len(row)} "
                    "cells"
                )
            if reader.line_num == 1 and not (_looks_like_mids(row[1]) and _looks_like_mids(row[2])):
                continue  # header
            if split is not None:
                if len(row) < 4:
                    raise ValueError(
                        f"{path}:{reader.line_num}: split {split!r} requested but the row has no split column"
                    )
                if row[-1].strip() != split:
                    continue
            images.append(row[0].strip())
            positives.append(_parse_mid_list(row[1]))
            negatives.append(_parse_mid_list(row[2]))
    return images, positives, negatives


def _read_human_layout(path: Path, image_ext: str) -> tuple[list[str], list[list[str]], list[list[str]]]:
    order: dict[str, int] = {}
    positives: list[list[str]] = []
    negatives: list[list[str]] = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != OPENIMAGES_HUMAN_HEADER:
            raise ValueError(f"{path}: expected the header {','.join(OPENIMAGES_HUMAN_HEADER)}, got {header}")
        for row in reader:
            if not row:
                continue
            if len(row) != 4:
                raise ValueError(f"{path}:{reader.line_num}: expected 4 cells, got {row}")
            image, mid, conf = row[0].strip(), row[2].strip(), row[3].strip()
            if conf not in ("0", "1", "0.0", "1.0"):
                raise ValueError(f"{path}:{reader.line_num}: Confidence must be 1 or 0, got {conf!r}")
            if image not in order:
                order[image] = len(order)
                positives.append([])
                negatives.append([])
            (positives if float(conf) == 1.0 else negatives)[order[image]].append(mid)
    return [image + image_ext for image in order], positives, negatives


def read_openimages_labels(
    labels_file: str | os.PathLike,
    classes: Sequence[str],
    *,
    layout: str = "auto",
    split: str | None = None,
    image_ext: str = ".jpg",
    verbose: bool = True,
) -> tuple[list[str], SparseLabels]:
    """Read OpenImages image-level labels into sparse 1 / 0 / -1 targets.

    Args:
        labels_file: ``data.csv`` (``csl`` layout) or a human-verified image-labels CSV (``human`` layout).
        classes: MIDs in target order (e.g. the 9,605 trainable classes).
        layout: ``"csl"``, ``"human"`` or ``"auto"`` (decided from the header).
        split: ``csl`` layout: keep the rows whose last column equals it (e.g. ``"train"``, ``"val"``); None keeps all.
        image_ext: ``human`` layout: extension appended to the image ids.
        verbose: Print how many labels were dropped (MIDs outside ``classes``) and how many conflicts were found.

    Returns:
        ``(image paths relative to the root, labels)``.
    """
    path = Path(labels_file)
    if not path.is_file():
        raise FileNotFoundError(f"OpenImages labels file {path} does not exist")
    if layout == "auto":
        layout = "human" if is_openimages_human_file(path) else "csl"
    if layout == "csl":
        images, pos_mids, neg_mids = _read_csl_layout(path, split)
    elif layout == "human":
        images, pos_mids, neg_mids = _read_human_layout(path, image_ext)
    else:
        raise ValueError(f"OpenImages layout must be 'auto', 'csl' or 'human', got {layout!r}")
    if not images:
        raise ValueError(f"{path}: no images" + (f" in split {split!r}" if split is not None else ""))
    index = {mid: i for i, mid in enumerate(classes)}
    dropped, conflicts = 0, 0
    positives, negatives = [], []
    for pos, neg in zip(pos_mids, neg_mids):
        p = {index[m] for m in pos if m in index}
        n = {index[m] for m in neg if m in index}
        dropped += len(pos) + len(neg) - len(p) - len(n)
        both = p & n
        if both:  # a label verified both ways: the positive verification wins
            conflicts += len(both)
            n -= both
        positives.append(sorted(p))
        negatives.append(sorted(n))
    labels = SparseLabels(len(classes), positives, negatives)
    if verbose and (dropped or conflicts):
        print(
            f"[miil] {path}: {dropped} labels of classes outside the {len(classes)}-class list dropped; "
            f"{conflicts} labels listed as both positive and negative kept as positive",
            file=sys.stderr,
        )
    return images, labels


class OpenImagesDataset(MultiLabelImageDataset):
    """OpenImages V6 images with sparse 1 / 0 / -1 labels over a class list (the 9,605 trainable classes).

    Args:
        labels_file: ``data.csv`` (``csl`` layout) or a human-verified image-labels CSV.
        image_root: Folder the image paths are relative to.
        classes: Class list file (see :func:`read_openimages_classes`) or a sequence of MIDs.
        split: ``csl`` layout: rows of this split only (None: all rows).
        layout: ``"auto"``, ``"csl"`` or ``"human"``.
        class_names: Optional MID -> display-name mapping (taken from the class file when it has names).
        transform: Applied to the RGB PIL image.
        strict: Raise on unreadable images instead of skipping them.
        image_ext: ``human`` layout: extension of the image files.
    """

    def __init__(
        self,
        labels_file: str | os.PathLike,
        image_root: str | os.PathLike,
        *,
        classes: str | os.PathLike | Sequence[str],
        split: str | None = None,
        layout: str = "auto",
        class_names: Mapping[str, str] | None = None,
        transform: Callable | None = None,
        strict: bool = False,
        image_ext: str = ".jpg",
    ):
        if isinstance(classes, str | os.PathLike):
            mids, names = read_openimages_classes(classes)
        else:
            mids, names = [str(c) for c in classes], {}
        if len(mids) != OPENIMAGES_V6_TRAINABLE_CLASSES:
            warnings.warn(
                f"the OpenImages class list has {len(mids)} classes; the paper's V6 setting uses the "
                f"{OPENIMAGES_V6_TRAINABLE_CLASSES} trainable classes",
                stacklevel=2,
            )
        images, labels = read_openimages_labels(labels_file, mids, layout=layout, split=split, image_ext=image_ext)
        super().__init__(
            image_root, images, labels, mids, transform=transform, strict=strict, source=os.fspath(labels_file)
        )
        self.class_names = dict(class_names) if class_names is not None else names

    def display_name(self, mid: str) -> str:
        return self.class_names.get(mid, mid)
