"""USI data pipeline: ImageNet-style folders, the training augmentation and the crop-0.95 evaluation transform.

Paper: USI (arXiv 2204.03475), the authors' ``train.py`` defaults: RandomResizedCrop (scale 0.08-1, bicubic), horizontal
flip 0.5, RandAugment ``rand-m7-mstd0.5-inc1``, no random erasing, no colour jitter (the original sets it, but timm
ignores colour jitter when an auto-augment policy is given); evaluation resizes to ``img_size / 0.95`` and center-crops
``img_size``.
The transforms are timm's ``create_transform``; images are read by ``miil.core.data.ImageFolderDataset``
(``root/<class>/<image>``, unreadable files skipped with a warning or rejected in strict mode).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from timm.data import create_transform
from torch.utils.data import Dataset, TensorDataset

from miil.core.data import ImageFolderDataset, Skipped, floor_posterize_bits

__all__ = ["IndexedDataset", "dataset_fingerprint", "image_folder", "usi_eval_transform", "usi_train_transform"]


def usi_train_transform(
    img_size: int,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    randaug: str | None = "rand-m7-mstd0.5-inc1",
    scale: Sequence[float] = (0.08, 1.0),
    ratio: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
    hflip: float = 0.5,
    interpolation: str = "bicubic",
    reprob: float = 0.0,
) -> Callable:
    """The USI training transform (PIL image in, normalized tensor out); posterize keeps at least 1 bit.

    Args:
        img_size: Output side in pixels.
        mean: Per-channel normalization mean (the student's).
        std: Per-channel normalization std.
        randaug: timm RandAugment config string; ``None`` or "" disables it.
        scale: RandomResizedCrop area range.
        ratio: RandomResizedCrop aspect-ratio range.
        hflip: Horizontal flip probability.
        interpolation: Resize interpolation ("bicubic" in the paper).
        reprob: Random-erasing probability (0 in the paper).
    """
    if img_size < 1:
        raise ValueError(f"img_size must be positive, got {img_size}")
    transform = create_transform(
        img_size,
        is_training=True,
        scale=tuple(scale),
        ratio=tuple(ratio),
        hflip=hflip,
        color_jitter=0.0,
        auto_augment=randaug or None,
        interpolation=interpolation,
        mean=tuple(mean),
        std=tuple(std),
        re_prob=reprob,
    )
    # rand-m7-mstd0.5-inc1 asks posterize for 0 bits (a Pillow error) when its Gaussian magnitude reaches 10, once in
    # 1e9 posterize draws: a 300-epoch ImageNet run makes ~2.6e7 of them, so ~2.5% of runs would crash. 1 bit instead.
    return floor_posterize_bits(transform)


def usi_eval_transform(
    img_size: int,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    crop_pct: float = 0.95,
    interpolation: str = "bicubic",
) -> Callable:
    """The USI evaluation transform: resize the short side to ``img_size / crop_pct``, center-crop, normalize.

    Args:
        img_size: Output side in pixels.
        mean: Per-channel normalization mean.
        std: Per-channel normalization std.
        crop_pct: Center-crop fraction (the paper's 0.95).
        interpolation: Resize interpolation.
    """
    if not 0.0 < crop_pct <= 1.0:
        raise ValueError(f"crop_pct must be in (0, 1], got {crop_pct}")
    return create_transform(
        img_size, is_training=False, crop_pct=crop_pct, interpolation=interpolation, mean=tuple(mean), std=tuple(std)
    )


def image_folder(
    root: str | os.PathLike,
    *,
    transform: Callable | None,
    classes: Sequence[str] | None = None,
    strict: bool = False,
) -> ImageFolderDataset:
    """An ImageNet-style folder (``root/<class>/<image>``; classes are the sorted sub-folder names).

    Args:
        root: The split folder (e.g. ``imagenet/train``).
        transform: Applied to each RGB PIL image.
        classes: Class order to enforce (e.g. the training run's classes when validating).
        strict: Raise on unreadable images instead of skipping them with a warning.
    """
    return ImageFolderDataset(root, transform=transform, classes=classes, strict=strict)


class IndexedDataset(Dataset):
    """Wraps a dataset so each sample also carries its index: ``(image, label, index)``.

    Used to look up precomputed teacher outputs of the sample; unreadable samples (``None`` or a :class:`Skipped`
    record) pass through unchanged, for the loop to count.

    Args:
        dataset: A map-style dataset of ``(image, label, ...)`` samples.
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, Any, int] | Skipped | None:
        sample = self.dataset[index]
        if sample is None or isinstance(sample, Skipped):
            return sample
        return sample[0], sample[1], index

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def dataset_fingerprint(dataset: Dataset) -> str:
    """A SHA-256 of a dataset's sample list (paths relative to its root, and labels), to match stored teacher outputs.

    Works for ``ImageFolderDataset`` (and anything with ``samples`` and ``root``), datasets with a ``targets`` list,
    and ``TensorDataset`` (its label tensors); otherwise only the length is hashed.

    Args:
        dataset: The training dataset (without transforms mattering: only the list of samples is hashed).
    """
    h = hashlib.sha256()
    base = dataset.dataset if isinstance(dataset, IndexedDataset) else dataset
    h.update(f"n={len(base)}\n".encode())
    samples = getattr(base, "samples", None)
    root = getattr(base, "root", None)
    if samples is not None:
        for path, label in samples:
            rel = Path(path).relative_to(root).as_posix() if root is not None else str(path)
            h.update(f"{rel}\t{int(label)}\n".encode())
    elif getattr(base, "targets", None) is not None:
        h.update(",".join(str(int(t)) for t in base.targets).encode())
    elif isinstance(base, TensorDataset):
        for t in base.tensors[1:]:
            h.update(str(tuple(t.shape)).encode() + t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
