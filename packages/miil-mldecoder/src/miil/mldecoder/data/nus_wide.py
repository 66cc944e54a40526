"""NUS-WIDE multi-label zero-shot data: the image list, the seen / unseen split and the class word vectors.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933), zero-shot
experiments (NUS-WIDE zero-shot: 925 seen labels for training, 81 human-annotated unseen labels for testing, fastText
word vectors of the label names), following the reference repository's ``data.csv`` format: one row per image with
the image path, its label list (``"[sky, clouds]"``) and its split (``train`` / ``val``). The reference reads the file
with pandas, so its first row is always a header, whatever its names.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from miil.core.data import IMAGE_EXTENSIONS, ImageTargetsDataset, UnreadablePolicy, resolve_under_root
from miil.core.errors import UserError
from miil.core.io import extract_state_dict, load_file

__all__ = ["NusWideDataset", "load_word_vectors", "parse_label_list", "read_nus_wide_csv"]

_HEADER_NAMES = ("image", "image_name", "image_path", "path", "filepath")


def parse_label_list(cell: str) -> list[str]:
    """Class names from a label cell such as ``"['sky', 'clouds']"``, ``"[sky, clouds]"`` or ``"sky;clouds"``."""
    text = cell.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    sep = ";" if ";" in text else ","
    names = [part.strip().strip("'\"").strip() for part in text.split(sep)]
    return [n for n in names if n]


def _is_header(row: list[str]) -> bool:
    """The first row is a header unless it reads as data: an image file name, or a bracketed label list."""
    if row[0].strip().lower() in _HEADER_NAMES:
        return True
    names_image = os.path.splitext(row[0].strip())[1].lower() in IMAGE_EXTENSIONS
    return not names_image and not (len(row) > 1 and row[1].strip().startswith("["))


def read_nus_wide_csv(path: str | os.PathLike) -> list[tuple[str, list[str], str]]:
    """Rows ``(image, labels, split)`` of a NUS-WIDE ``data.csv`` (a header row is skipped; split may be absent)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NUS-WIDE list {path} does not exist")
    rows = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            if not row or not any(c.strip() for c in row):
                continue
            if line_no == 1 and _is_header(row):
                continue
            if len(row) < 2:
                raise ValueError(f"{path}:{line_no}: expected 'image,labels[,split]', got {row!r}")
            split = row[2].strip() if len(row) > 2 else ""
            rows.append((row[0].strip(), parse_label_list(row[1]), split))
    if not rows:
        raise ValueError(f"NUS-WIDE list {path} has no rows")
    return rows


class NusWideDataset(ImageTargetsDataset):
    """NUS-WIDE images with targets over all (seen and unseen) classes.

    Args:
        root: Image folder; the CSV's image paths are relative to it.
        csv_path: The ``data.csv`` list.
        split: Keep rows of this split ("train" / "val"); ``None`` keeps all.
        classes: Class order; default: the sorted label names of the whole file.
        only_with_classes: Keep only images with at least one positive among these class indices (the reference
            evaluates ZSL on images that carry an unseen label).
        transform: Applied to the RGB PIL image.
        strict: Raise on unreadable images instead of skipping them with a warning.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        csv_path: str | os.PathLike,
        *,
        split: str | None = None,
        classes: Sequence[str] | None = None,
        only_with_classes: Sequence[int] | None = None,
        transform: Callable | None = None,
        strict: bool = False,
    ):
        rows = read_nus_wide_csv(csv_path)
        all_names = sorted({n for _, labels, _ in rows for n in labels})
        self.classes = list(classes) if classes is not None else all_names
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted(set(all_names) - set(index))
        if unknown:
            raise ValueError(f"{csv_path}: labels not in the given classes: {unknown[:20]}")
        if split is not None:
            splits = {s for _, _, s in rows}
            rows = [r for r in rows if r[2] == split]
            if not rows:
                raise ValueError(f"{csv_path}: no rows of split {split!r}; splits in the file: {sorted(splits)}")
        targets = torch.zeros(len(rows), len(self.classes))
        for i, (_, labels, _) in enumerate(rows):
            targets[i, [index[n] for n in labels]] = 1.0
        if only_with_classes is not None:
            keep = targets[:, list(only_with_classes)].gt(0).any(dim=1)
            rows = [r for r, k in zip(rows, keep.tolist()) if k]
            targets = targets[keep]
        self.root = Path(root)
        self.paths = [str(resolve_under_root(self.root, image)) for image, _, _ in rows]
        self.targets = targets
        self.transform = transform
        self.policy = UnreadablePolicy(strict=strict)


def load_word_vectors(path: str | os.PathLike, num_classes: int) -> torch.Tensor:
    """Class word vectors ``[num_classes, dim]`` from a ``.pth`` (tensors only), ``.safetensors``, ``.npy`` or plain
    ``.pkl`` file, opened through :func:`miil.core.io.load_file` (no pickled code runs).

    The reference's ``wordvec_array.pth`` stores ``[dim, num_classes]`` (possibly with a leading 1); such arrays are
    transposed. Rows must follow the dataset's class order.

    Args:
        path: The file.
        num_classes: Expected number of classes (rows).
    """
    obj = load_file(path, what="word-vector file")
    try:
        if isinstance(obj, np.ndarray):
            array = torch.from_numpy(np.asarray(obj, dtype=np.float32))
        elif isinstance(obj, torch.Tensor):
            array = obj
        elif isinstance(obj, list | tuple):
            array = torch.tensor(obj, dtype=torch.float32)
        else:
            tensors = extract_state_dict(obj)
            if len(tensors) != 1:
                raise UserError(f"{path} holds {len(tensors)} tensors ({sorted(tensors)[:5]}); expected one array")
            array = next(iter(tensors.values()))
    except (TypeError, ValueError) as err:
        raise UserError(f"word-vector file {path} holds no numeric array ({err})") from None
    array = array.float()
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise UserError(f"word vectors in {path} have shape {tuple(array.shape)}; expected a 2-D array")
    if array.shape[0] != num_classes and array.shape[1] == num_classes:
        array = array.t()
    if array.shape[0] != num_classes:
        raise UserError(f"word vectors in {path} have shape {tuple(array.shape)}, but there are {num_classes} classes")
    return array.contiguous()
