"""Data for HardCoRe-NAS: ImageNet-style folders with timm's transforms, and the train / held-out split of the search.

Paper: HardCoRe-NAS (arXiv 2102.11646), section 4: the supernet trains on 80% of the training set and the search
estimates the expected loss on the remaining 20% (the original's ``--train_percent 80``). The split is a seeded
permutation, so training and search agree on it across runs and processes.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from timm.data import create_transform
from torch.utils.data import Dataset, Subset

from miil.core.data import ImageFolderDataset, UnreadablePolicy, floor_posterize_bits
from miil.core.errors import UserError

__all__ = ["ImageFiles", "eval_transform", "held_out_split", "image_folder", "image_sets", "train_transform"]


def train_transform(img_size: int, *, randaug: str | None = None, reprob: float = 0.0):
    """timm's ImageNet training transform (random resized crop, flip, optional RandAugment and random erasing).

    Posterize keeps at least 1 bit (``miil.core.data.floor_posterize_bits``): a Gaussian RandAugment magnitude can
    ask for 0 bits, which Pillow rejects.
    """
    return floor_posterize_bits(
        create_transform(
            img_size, is_training=True, auto_augment=randaug or None, re_prob=reprob, interpolation="bilinear"
        )
    )


def eval_transform(img_size: int):
    """timm's evaluation transform (resize, center crop 87.5%, normalise)."""
    return create_transform(img_size, is_training=False, interpolation="bilinear", crop_pct=0.875)


def image_folder(root: str | os.PathLike, transform, *, strict: bool = False) -> ImageFolderDataset:
    """An ImageNet-style folder ``root/<class>/<image>`` (unreadable images skipped unless ``strict``)."""
    return ImageFolderDataset(root, transform=transform, strict=strict)


def image_sets(
    recipe: Any,
    data_dir: str | os.PathLike,
    val_dir: str | os.PathLike | None = None,
    *,
    train_percent: float | None = None,
    seed: int = 0,
    strict: bool = False,
) -> tuple[Dataset, ImageFolderDataset | None, list[str]]:
    """``(train, val or None, classes)`` of a supernet or child recipe: the training folder with the recipe's
    augmentation (its first ``train_percent`` percent when given, as the supernet trains), the validation folder
    with the evaluation transform.

    Args:
        recipe: A supernet or child recipe (``img_size``, ``randaug``, ``reprob``).
        data_dir: Training folder ``<class>/<image>``.
        val_dir: Validation folder with the same classes.
        train_percent: Keep only the weights part of :func:`held_out_split`.
        seed: Seed of that split.
        strict: Raise on unreadable images instead of skipping them.
    """
    augment = train_transform(recipe.img_size, randaug=recipe.randaug, reprob=recipe.reprob)
    train: Dataset = image_folder(data_dir, augment, strict=strict)
    classes = list(train.classes)
    if train_percent is not None:
        train, _ = held_out_split(train, train_percent=train_percent, seed=seed)
    val = image_folder(val_dir, eval_transform(recipe.img_size), strict=strict) if val_dir else None
    if val is not None and list(val.classes) != classes:
        raise UserError(
            f"the class folders of {val_dir} ({len(val.classes)}) differ from those of {data_dir} ({len(classes)}); "
            "both splits need the same <class> folders"
        )
    return train, val, classes


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


class ImageFiles(Dataset):
    """The images ``infer`` reads: ``(tensor, position)`` per file, or a ``Skipped`` record (file and reason) for an
    input that cannot be read (missing, empty, truncated, not an image, a folder), unless ``strict``.

    Args:
        paths: The input files, in the order the predictions are reported.
        transform: Applied to the RGB image.
        strict: Raise ``UnreadableFileError`` at the first unreadable input instead of skipping it.
    """

    def __init__(self, paths: list[str | os.PathLike], transform, *, strict: bool = False):
        self.paths = [str(p) for p in paths]
        self.transform = transform
        self.policy = UnreadablePolicy(strict=strict)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Any:
        path = self.paths[index]
        img = self.policy.load_image(path)
        if img is None:
            return self.policy.skipped_sample(path)
        return self.transform(img), index
