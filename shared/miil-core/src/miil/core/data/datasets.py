"""Image datasets for single- and multi-label classification, with safe paths and unreadable-file handling.

``MultiLabelCSVDataset`` reads the label formats used to train the MIIL multi-label models (ASL, ML-Decoder):
a dense table with one column per class and values 1 (positive), 0 (negative), -1 or empty (not annotated, as in
OpenImages' partial annotation), or a sparse table listing class names per image. ``ImageFolderDataset`` reads the
usual ``root/<class>/<image>`` layout. Image paths are confined to the data root, and files that cannot be decoded
are skipped with a warning (the sample is ``None``) or raise, following ``UnreadablePolicy``.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import UserError
from ..io import atomic_write_text
from .unreadable import UnreadablePolicy

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageFolderDataset",
    "ImageTargetsDataset",
    "MultiLabelCSVDataset",
    "PathEscapeError",
    "resolve_under_root",
    "write_multilabel_csv",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

_VALUES = {1.0: 1.0, 0.0: 0.0, -1.0: -1.0}


def _is_sparse_header(columns: Sequence[str]) -> bool:
    lower = [c.lower() for c in columns]
    return lower == ["labels"] or sorted(lower) == ["negative", "positive"]


def _is_absolute(path: str) -> bool:
    return PurePosixPath(path).is_absolute() or bool(PureWindowsPath(path).anchor)


class PathEscapeError(UserError, ValueError):
    """A path read from a label file points outside its dataset root (absolute, or climbing out with ``..``)."""


def resolve_under_root(root: str | os.PathLike, relative: str | os.PathLike) -> Path:
    """Join a path read from a label file to its dataset root, refusing one that would leave the root.

    The check is lexical: absolute paths and ``..`` components that climb out of the root are refused, while symbolic
    links inside the root (a common way to assemble a dataset from several disks) are followed, since the dataset's
    owner made them; a label file, which may come from anyone, cannot name a file outside the root.

    Args:
        root: The data root folder.
        relative: A path relative to ``root``.

    Returns:
        ``root / relative`` with ``.`` and ``..`` collapsed (absolute, not resolved through links).
    """
    root_path = Path(os.path.abspath(root))
    rel = os.fspath(relative)
    if not rel.strip():
        raise PathEscapeError(f"empty path under data root {root_path}")
    if _is_absolute(rel):
        raise PathEscapeError(f"path {rel!r} is absolute; paths must be relative to the data root {root_path}")
    norm = os.path.normpath(rel.replace("\\", "/"))
    if norm == ".." or norm.startswith("../"):
        raise PathEscapeError(
            f"path {rel!r} climbs out of the data root {root_path} with '..'; paths must stay inside the root"
        )
    return root_path / norm


def _make_policy(policy: UnreadablePolicy | None, strict: bool) -> UnreadablePolicy:
    if policy is None:
        return UnreadablePolicy(strict=strict)
    if not isinstance(policy, UnreadablePolicy):
        raise TypeError(f"policy must be an UnreadablePolicy, got {type(policy).__name__}")
    return policy


def _check_classes(classes: Sequence[str], what: str) -> list[str]:
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        raise TypeError(f"{what} must be a list of class names, got {classes!r}")
    out = [str(c) for c in classes]
    if any(not c.strip() for c in out):
        raise ValueError(f"{what} contains an empty class name: {out!r}")
    dupes = sorted(c for c, n in Counter(out).items() if n > 1)
    if dupes:
        raise ValueError(f"{what} lists these class names more than once: {dupes}")
    return out


def _read_rows(csv_path: Path) -> tuple[int, list[str], list[tuple[int, list[str]]]]:
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header_line, header, rows = 0, None, []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header_line, header = reader.line_num, [cell.strip() for cell in row]
            else:
                rows.append((reader.line_num, row))
    if header is None:
        raise ValueError(
            f"{csv_path} is empty; expected a header 'image,<class_1>,...,<class_C>' (dense) or "
            "'image,positive,negative' / 'image,labels' (sparse)"
        )
    if header[0].lower() != "image":
        raise ValueError(
            f"{csv_path}:{header_line}: the first header column must be 'image', got {header[0]!r}; expected "
            "'image,<class_1>,...,<class_C>' (dense) or 'image,positive,negative' / 'image,labels' (sparse)"
        )
    return header_line, header, rows


def _parse_dense(
    csv_path: Path, header: list[str], header_line: int, rows: list[tuple[int, list[str]]], classes: list[str] | None
) -> tuple[list[str], list[tuple[int, str]], np.ndarray]:
    columns = header[1:]
    if not columns:
        raise ValueError(f"{csv_path}:{header_line}: the header names no classes after 'image'")
    try:
        _check_classes(columns, "header")
    except ValueError as err:
        raise ValueError(f"{csv_path}:{header_line}: {err}") from None
    if classes is None:
        classes = columns
    else:
        unknown = [c for c in columns if c not in classes]
        if unknown:
            raise ValueError(f"{csv_path}:{header_line}: header columns {unknown} are not in the given classes")
    col_to_class = [classes.index(c) for c in columns]
    targets = np.full((len(rows), len(classes)), -1.0, dtype=np.float32)
    images = []
    for i, (line, row) in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(
                f"{csv_path}:{line}: row has {len(row)} cells but the header has {len(header)}; "
                "write one value (1, 0, -1 or empty) per class after the image path"
            )
        images.append((line, row[0].strip()))
        for name, cell, k in zip(columns, row[1:], col_to_class):
            value = cell.strip()
            if not value:
                continue
            try:
                targets[i, k] = _VALUES[float(value)]
            except (ValueError, KeyError):
                raise ValueError(
                    f"{csv_path}:{line}: class {name!r} has value {cell!r}; dense labels must be 1 (positive), "
                    "0 (negative), -1 or empty (not annotated)"
                ) from None
    return classes, images, targets


def _split_names(cell: str) -> list[str]:
    return [name.strip() for name in cell.split(";") if name.strip()]


def _parse_sparse(
    csv_path: Path, header: list[str], rows: list[tuple[int, list[str]]], classes: list[str] | None
) -> tuple[list[str], list[tuple[int, str]], np.ndarray]:
    lower = [h.lower() for h in header]
    has_negative = "negative" in lower
    pos_col = lower.index("positive") if has_negative else lower.index("labels")
    neg_col = lower.index("negative") if has_negative else None
    parsed = []
    for line, row in rows:
        if len(row) != len(header):
            raise ValueError(
                f"{csv_path}:{line}: row has {len(row)} cells but the header has {len(header)} "
                f"({','.join(header)}); leave a cell empty rather than dropping it"
            )
        pos = _split_names(row[pos_col])
        neg = _split_names(row[neg_col]) if neg_col is not None else []
        both = sorted(set(pos) & set(neg))
        if both:
            raise ValueError(f"{csv_path}:{line}: classes {both} are listed as both positive and negative")
        if classes is not None:
            for name in pos + neg:
                if name not in classes:
                    raise ValueError(
                        f"{csv_path}:{line}: unknown class name {name!r}; it is not in the given classes "
                        f"(pass classes=None to take the class list from the CSV)"
                    )
        parsed.append((line, row[0].strip(), pos, neg))
    if classes is None:
        classes = sorted({name for *_, pos, neg in parsed for name in pos + neg})
        if not classes:
            raise ValueError(f"{csv_path}: no class names found in any row")
    index = {c: k for k, c in enumerate(classes)}
    targets = np.full((len(parsed), len(classes)), -1.0 if has_negative else 0.0, dtype=np.float32)
    for i, (_, _, pos, neg) in enumerate(parsed):
        targets[i, [index[n] for n in neg]] = 0.0
        targets[i, [index[n] for n in pos]] = 1.0
    return classes, [(line, image) for line, image, *_ in parsed], targets


class ImageTargetsDataset(Dataset):
    """Images read by path, each with one target row: the loading shared by the image datasets built on it.

    A subclass fills ``paths`` (image files), ``targets`` (a tensor with one row per image), ``transform`` (applied
    to the RGB PIL image, or None) and ``policy`` (an :class:`UnreadablePolicy`) in its ``__init__``. A sample is
    ``(image, target)``, or ``None`` for an unreadable image that the policy skips (the engine counts those).
    """

    paths: list[str]
    targets: torch.Tensor
    transform: Callable | None
    policy: UnreadablePolicy

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Any, torch.Tensor] | None:
        img = self.policy.load_image(self.paths[index])
        if img is None:
            return self.policy.skipped_sample(self.paths[index])
        if self.transform is not None:
            img = self.transform(img)
        return img, self.targets[index].clone()


class MultiLabelCSVDataset(ImageTargetsDataset):
    """Multi-label images listed in a CSV file, with targets 1 (positive), 0 (negative) and -1 (not annotated).

    Two formats are recognised from the header:

    * dense: ``image,<class_1>,...,<class_C>``; one value per class in each row, 1, 0, -1 or empty (= -1);
    * sparse: ``image,positive,negative``, class names separated by ``;`` in each cell, classes listed in neither
      column are -1; or ``image,labels``, where unlisted classes are 0.

    Args:
        csv_path: The CSV file.
        root: Folder the image paths are relative to; defaults to the CSV's folder. Paths may not leave it.
        transform: Applied to the RGB PIL image.
        classes: Class list (fixes the target order). Defaults to the dense header's columns, or the sorted union
            of class names in a sparse file.
        policy: How to treat unreadable images; defaults to ``UnreadablePolicy(strict=strict)``.
        strict: Raise ``UnreadableFileError`` for unreadable images instead of skipping them (when ``policy`` is
            not given).
    """

    def __init__(
        self,
        csv_path: str | os.PathLike,
        root: str | os.PathLike | None = None,
        *,
        transform: Callable | None = None,
        classes: Sequence[str] | None = None,
        policy: UnreadablePolicy | None = None,
        strict: bool = False,
    ):
        self.csv_path = Path(csv_path)
        if not self.csv_path.is_file():
            raise FileNotFoundError(f"multi-label CSV file {self.csv_path} does not exist")
        self.root = Path(root) if root is not None else self.csv_path.parent
        if not self.root.is_dir():
            raise FileNotFoundError(f"image root {self.root} for {self.csv_path} is not a folder")
        given = _check_classes(classes, "classes") if classes is not None else None
        header_line, header, rows = _read_rows(self.csv_path)
        if _is_sparse_header(header[1:]):
            self.format = "sparse"
            self.classes, images, targets = _parse_sparse(self.csv_path, header, rows, given)
        else:
            self.format = "dense"
            self.classes, images, targets = _parse_dense(self.csv_path, header, header_line, rows, given)
        self.paths: list[str] = []
        for line, image in images:
            try:
                self.paths.append(str(resolve_under_root(self.root, image)))
            except ValueError as err:
                raise ValueError(f"{self.csv_path}:{line}: {err}") from None
        self.targets = torch.from_numpy(targets)
        self.transform = transform
        self.policy = _make_policy(policy, strict)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.csv_path}, format={self.format}, samples={len(self)}, "
            f"classes={len(self.classes)})"
        )


def write_multilabel_csv(
    path: str | os.PathLike,
    paths: Sequence[str | os.PathLike],
    targets: torch.Tensor | np.ndarray | Sequence[Sequence[float]],
    classes: Sequence[str],
) -> None:
    """Write a dense multi-label CSV (``image,<class_1>,...``) that ``MultiLabelCSVDataset`` reads back.

    Args:
        path: Output CSV file (written atomically; parent folders are created).
        paths: Image paths relative to the data root, one per row.
        targets: ``[N, C]`` values in {1, 0, -1}.
        classes: The ``C`` class names, in column order.
    """
    classes = _check_classes(classes, "classes")
    if _is_sparse_header(classes):
        raise ValueError(f"class names {classes} would make the file read back as the sparse format; rename them")
    if "image" in (c.lower() for c in classes):
        raise ValueError("a class may not be named 'image' (it is the name of the path column)")
    if isinstance(targets, torch.Tensor):
        targets = targets.detach().cpu().numpy()
    values = np.asarray(targets, dtype=np.float64)
    if values.ndim != 2 or values.shape != (len(paths), len(classes)):
        raise ValueError(
            f"targets must have shape [len(paths), len(classes)] = [{len(paths)}, {len(classes)}], "
            f"got {list(values.shape)}"
        )
    bad = ~np.isin(values, (1.0, 0.0, -1.0))
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise ValueError(f"targets[{i}, {k}] = {float(values[i, k])} (class {classes[k]!r}); values must be 1, 0 or -1")
    rel_paths = []
    for p in paths:
        s = Path(p).as_posix() if isinstance(p, os.PathLike) else str(p)
        if _is_absolute(s):
            raise ValueError(f"image path {s!r} is absolute; write paths relative to the data root")
        rel_paths.append(s)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["image", *classes])
    for p, row in zip(rel_paths, values.astype(np.int64)):
        writer.writerow([p, *row.tolist()])
    atomic_write_text(path, buf.getvalue())


class ImageFolderDataset(Dataset):
    """Single-label images laid out as ``root/<class>/<image>`` (searched recursively inside each class folder).

    Classes are the sorted names of the sub-folders of ``root``. Files with the extensions in
    ``IMAGE_EXTENSIONS`` (any case) are used; hidden files and folders (names starting with ".") are ignored.

    Args:
        root: The data root.
        transform: Applied to the RGB PIL image.
        classes: Class folders to use, in label order; defaults to all sub-folders, sorted.
        policy: How to treat unreadable images; defaults to ``UnreadablePolicy(strict=strict)``.
        strict: Raise ``UnreadableFileError`` for unreadable images instead of skipping them (when ``policy`` is
            not given).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        transform: Callable | None = None,
        classes: Sequence[str] | None = None,
        policy: UnreadablePolicy | None = None,
        strict: bool = False,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder root {self.root} does not exist or is not a folder")
        if classes is None:
            classes = sorted(d.name for d in self.root.iterdir() if d.is_dir() and not d.name.startswith("."))
            if not classes:
                raise FileNotFoundError(
                    f"no class folders in {self.root}; expected the layout {self.root}/<class>/<image>"
                )
        self.classes = _check_classes(classes, "classes")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.samples: list[tuple[str, int]] = []
        for idx, name in enumerate(self.classes):
            if name in (".", "..") or "/" in name or "\\" in name:
                raise ValueError(f"class {name!r} is not a plain folder name inside {self.root}")
            folder = self.root / name
            if not folder.is_dir():
                raise FileNotFoundError(f"class folder {folder} does not exist (class {name!r} under {self.root})")
            found = []
            for dirpath, dirnames, filenames in os.walk(folder):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                found += [
                    os.path.join(dirpath, f)
                    for f in filenames
                    if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS
                ]
            self.samples += [(p, idx) for p in sorted(found)]
        if not self.samples:
            raise FileNotFoundError(
                f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in the class folders of {self.root}"
            )
        self.targets = [idx for _, idx in self.samples]
        self.transform = transform
        self.policy = _make_policy(policy, strict)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int] | None:
        path, label = self.samples[index]
        img = self.policy.load_image(path)
        if img is None:
            return self.policy.skipped_sample(path)
        if self.transform is not None:
            img = self.transform(img)
        return img, label

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.root}, samples={len(self)}, classes={len(self.classes)})"
