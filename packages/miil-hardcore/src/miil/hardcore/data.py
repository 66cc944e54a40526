"""Data for HardCoRe-NAS: ImageNet-style folders with timm's transforms, and the train / held-out split of the search.

Paper: HardCoRe-NAS (arXiv 2102.11646), section 4: the supernet trains on 80% of the training set and the search
estimates the expected loss on the remaining 20% (the original's ``--train_percent 80``). The split is a seeded
permutation, so training and search agree on it across runs and processes.
"""

from __future__ import annotations

import os

import torch
from timm.data import create_transform
from torch.utils.data import Dataset, Subset

from miil.core.data import ImageFolderDataset

__all__ = ["eval_transform", "held_out_split", "image_folder", "train_transform"]


def train_transform(img_size: int, *, auto_augment: str | None = None, re_prob: float = 0.0):
    """timm's ImageNet training transform (random resized crop, flip, optional RandAugment and random erasing)."""
    return create_transform(
        img_size, is_training=True, auto_augment=auto_augment, re_prob=re_prob, interpolation="bilinear"
    )


def eval_transform(img_size: int):
    """timm's evaluation transform (resize, center crop 87.5%, normalise)."""
    return create_transform(img_size, is_training=False, interpolation="bilinear", crop_pct=0.875)


def image_folder(root: str | os.PathLike, transform, *, strict: bool = False) -> ImageFolderDataset:
    """An ImageNet-style folder ``root/<class>/<image>`` (unreadable images skipped unless ``strict``)."""
    return ImageFolderDataset(root, transform=transform, strict=strict)


def held_out_split(dataset: Dataset, *, train_percent: float = 80.0, seed: int = 0) -> tuple[Subset, Subset]:
    """Split a training set into ``(weights part, search part)`` with a seeded permutation.

    Args:
        dataset: The training set.
        train_percent: Percent of the samples in the first part (the paper: 80).
        seed: Seed of the permutation.
    """
    if not 0.0 < train_percent < 100.0:
        raise ValueError(f"train_percent must be strictly between 0 and 100, got {train_percent}")
    n = len(dataset)
    cut = int(round(n * train_percent / 100.0))
    if cut == 0 or cut == n:
        raise ValueError(f"train_percent {train_percent} leaves an empty part of a dataset of {n} samples")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return Subset(dataset, sorted(perm[:cut])), Subset(dataset, sorted(perm[cut:]))
