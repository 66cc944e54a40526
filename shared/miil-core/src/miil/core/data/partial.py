"""Image files with partial multi-label targets 1 / 0 / -1, stored densely or as per-image positive / negative lists.

Used by the OpenImages V6 loader (:mod:`miil.core.data.openimages`, read by miil-csl and miil-mldecoder) and
miil-csl's LVIS loader ("Multi-label Classification with Partial Annotations using Class-aware Selective Loss",
arXiv 2110.10955, Section 5). OpenImages has 9,605 classes and millions of images, so its labels are kept as sparse
lists and expanded to a dense row per sample.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .datasets import PathEscapeError, resolve_under_root
from .unreadable import Skipped, UnreadablePolicy

__all__ = ["MultiLabelImageDataset", "SparseLabels"]


class SparseLabels:
    """Per-sample positive and negative class indices (CSR layout); every other label is ``fill``.

    Args:
        num_classes: Number of classes.
        positives: One sequence of class indices per sample.
        negatives: One sequence of class indices per sample (same length as ``positives``).
        fill: Value of labels listed in neither (-1: not annotated).
    """

    def __init__(
        self,
        num_classes: int,
        positives: Sequence[Sequence[int]],
        negatives: Sequence[Sequence[int]],
        *,
        fill: float = -1.0,
    ):
        if len(positives) != len(negatives):
            raise ValueError(f"{len(positives)} positive lists but {len(negatives)} negative lists")
        self.num_classes = int(num_classes)
        self.fill = float(fill)
        self._pos_ptr, self._pos = self._pack(positives)
        self._neg_ptr, self._neg = self._pack(negatives)

    def _pack(self, lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        ptr = np.zeros(len(lists) + 1, dtype=np.int64)
        ptr[1:] = np.cumsum([len(x) for x in lists])
        flat = np.fromiter((int(i) for x in lists for i in x), dtype=np.int32, count=int(ptr[-1]))
        if flat.size and (flat.min() < 0 or flat.max() >= self.num_classes):
            raise ValueError(f"class index out of range [0, {self.num_classes})")
        return ptr, flat

    def __len__(self) -> int:
        return len(self._pos_ptr) - 1

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self), self.num_classes)

    def row(self, index: int) -> torch.Tensor:
        """Dense float32 ``[C]`` labels of one sample."""
        out = torch.full((self.num_classes,), self.fill, dtype=torch.float32)
        out[torch.from_numpy(self._neg[self._neg_ptr[index] : self._neg_ptr[index + 1]]).long()] = 0.0
        out[torch.from_numpy(self._pos[self._pos_ptr[index] : self._pos_ptr[index + 1]]).long()] = 1.0
        return out

    def dense(self) -> torch.Tensor:
        """All labels as a dense ``[N, C]`` float32 tensor (mind the memory for large sets)."""
        return torch.stack([self.row(i) for i in range(len(self))]) if len(self) else torch.empty(0, self.num_classes)

    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Positives and negatives per class."""
        return (
            np.bincount(self._pos, minlength=self.num_classes),
            np.bincount(self._neg, minlength=self.num_classes),
        )


class MultiLabelImageDataset(Dataset):
    """Images under a root folder with multi-label targets; samples are ``(image, float32 [C] target)``, or a
    :class:`~miil.core.data.Skipped` record (file and reason) for an image that cannot be read.

    Args:
        root: Data root; image paths are relative to it and may not leave it.
        images: Relative image paths, one per sample.
        targets: Dense ``[N, C]`` labels 1 / 0 / -1, or :class:`SparseLabels`.
        classes: Class names, in target order.
        transform: Applied to the RGB PIL image.
        strict: Raise on unreadable images instead of skipping them with a warning.
        source: Where the labels came from (for messages).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        images: Sequence[str],
        targets: torch.Tensor | SparseLabels,
        classes: Sequence[str],
        *,
        transform: Callable | None = None,
        strict: bool = False,
        source: str = "",
    ):
        self.root = os.fspath(root)
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"image root {self.root} is not a folder")
        self.images = list(images)
        self.classes = list(classes)
        if len(targets) != len(self.images) or targets.shape[1] != len(self.classes):
            raise ValueError(
                f"targets have shape {tuple(targets.shape)} but there are {len(self.images)} images and "
                f"{len(self.classes)} classes"
            )
        self.targets = targets
        self.transform = transform
        self.policy = UnreadablePolicy(strict=strict)
        self.source = source

    def __len__(self) -> int:
        return len(self.images)

    def target(self, index: int) -> torch.Tensor:
        if isinstance(self.targets, SparseLabels):
            return self.targets.row(index)
        return self.targets[index].float().clone()

    def path(self, index: int) -> str:
        try:
            return str(resolve_under_root(self.root, self.images[index]))
        except PathEscapeError as err:  # keeps its type: a user error (exit status 2), and a ValueError
            raise PathEscapeError(f"{self.source or type(self).__name__}: {err}") from None

    def __getitem__(self, index: int) -> tuple[Any, torch.Tensor] | Skipped:
        path = self.path(index)
        img = self.policy.load_image(path)
        if img is None:
            return self.policy.skipped_sample(path)
        if self.transform is not None:
            img = self.transform(img)
        return img, self.target(index)

    def __repr__(self) -> str:
        kind = "sparse" if isinstance(self.targets, SparseLabels) else "dense"
        return (
            f"{type(self).__name__}({self.source or self.root}, samples={len(self)}, classes={len(self.classes)}, "
            f"labels={kind})"
        )
