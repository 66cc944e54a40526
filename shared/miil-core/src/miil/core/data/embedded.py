"""Real image data that ships inside an installed wheel: scikit-learn's handwritten digits, no downloads.

``sklearn.datasets.load_digits`` is the UCI "Optical Recognition of Handwritten Digits" test set: 1,797 real 8x8
grey-level digits (values 0..16, ten classes). It is bundled with scikit-learn, so demos, tutorials and tests can
train and evaluate on real images offline. Here the digits are scaled to 0..255 and split (stratified, seeded) into
train and test parts. scikit-learn comes with miil-core's ``demo`` extra (``pip install 'miil-core[demo]'``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..extras import require

__all__ = ["DigitsDataset", "digits_pil_images", "load_digits_split"]

_SPLITS = ("train", "test")
_NEEDS_SKLEARN = {"distribution": "miil-core", "extra": "demo", "purpose": "the embedded digits (miil.core.data)"}


@lru_cache(maxsize=1)
def _all_digits() -> tuple[np.ndarray, np.ndarray]:
    with require("sklearn", **_NEEDS_SKLEARN):
        from sklearn.datasets import load_digits

    data = load_digits()
    images = np.clip(np.rint(data.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return images, data.target.astype(np.int64)


@lru_cache(maxsize=8)
def _split_indices(test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    with require("sklearn", **_NEEDS_SKLEARN):
        from sklearn.model_selection import train_test_split

    _, labels = _all_digits()
    index = np.arange(len(labels))
    train, test = train_test_split(index, test_size=test_fraction, random_state=seed, stratify=labels)
    return train, test


def load_digits_split(
    split: str = "train", *, test_fraction: float = 0.25, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """One part of a stratified, seeded train/test split of scikit-learn's digits.

    Args:
        split: ``"train"`` or ``"test"``.
        test_fraction: Fraction of the 1,797 images in the test part, in (0, 1).
        seed: Random seed of the split; the same seed always gives the same split.

    Returns:
        ``(images, labels)``: uint8 ``[N, 8, 8]`` in 0..255 and int64 ``[N]`` in 0..9 (fresh arrays).
    """
    if split not in _SPLITS:
        raise ValueError(f"digits split must be 'train' or 'test', got {split!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    images, labels = _all_digits()
    train, test = _split_indices(float(test_fraction), int(seed))
    index = train if split == "train" else test
    return images[index], labels[index]


def _to_pil(image: np.ndarray, image_size: int, channels: int) -> Image.Image:
    img = Image.fromarray(image)  # 2-D uint8 -> mode "L"
    if image_size != img.width:
        img = img.resize((image_size, image_size), Image.Resampling.BILINEAR)
    return img.convert("RGB") if channels == 3 else img


def _check_format(image_size: int, channels: int) -> None:
    if not isinstance(image_size, int) or image_size <= 0:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")


class DigitsDataset(Dataset):
    """scikit-learn's handwritten digits as a torch dataset of ``(image tensor, label)``.

    Without a transform the images are float tensors ``[channels, image_size, image_size]`` in [0, 1], computed
    once up front (bilinear resize in PIL). With a transform, each sample's PIL image (mode "L" for one channel,
    "RGB" for three, already resized) goes through it, and the transform must return a tensor.

    Args:
        split: ``"train"`` or ``"test"``.
        image_size: Side of the square output images (the source digits are 8x8).
        channels: 1 for grey images, 3 for RGB (the grey value repeated).
        transform: Optional PIL-to-tensor transform.
        test_fraction: Fraction of the data in the test split.
        seed: Seed of the train/test split.
    """

    def __init__(
        self,
        split: str = "train",
        *,
        image_size: int = 8,
        channels: int = 1,
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
        test_fraction: float = 0.25,
        seed: int = 0,
    ):
        _check_format(image_size, channels)
        self.split = split
        self.classes = [str(d) for d in range(10)]
        self.image_size = image_size
        self.channels = channels
        self.transform = transform
        self.images, labels = load_digits_split(split, test_fraction=test_fraction, seed=seed)
        self.targets = labels.tolist()
        self.tensors: torch.Tensor | None = None
        if transform is None:
            grey = np.stack([np.asarray(_to_pil(im, image_size, 1)) for im in self.images])
            tensors = torch.from_numpy(grey).float().div_(255.0).unsqueeze(1)
            self.tensors = tensors.expand(-1, channels, -1, -1).contiguous()

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        label = self.targets[index]
        if self.tensors is not None:
            return self.tensors[index], label
        out = self.transform(_to_pil(self.images[index], self.image_size, self.channels))
        if not isinstance(out, torch.Tensor):
            raise TypeError(
                f"DigitsDataset transform must return a tensor, got {type(out).__name__}; "
                "end the transform with torchvision.transforms.ToTensor()"
            )
        return out, label

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(split={self.split!r}, samples={len(self)}, image_size={self.image_size}, "
            f"channels={self.channels})"
        )


def digits_pil_images(
    split: str = "train",
    *,
    image_size: int = 8,
    channels: int = 1,
    test_fraction: float = 0.25,
    seed: int = 0,
) -> list[tuple[Image.Image, int]]:
    """The digits of one split as ``(PIL image, label)`` pairs (mode "L", or "RGB" with ``channels=3``).

    Args:
        split: ``"train"`` or ``"test"``.
        image_size: Side of the square images (bilinear resize from 8x8).
        channels: 1 for mode "L", 3 for mode "RGB".
        test_fraction: Fraction of the data in the test split.
        seed: Seed of the train/test split.
    """
    _check_format(image_size, channels)
    images, labels = load_digits_split(split, test_fraction=test_fraction, seed=seed)
    return [(_to_pil(im, image_size, channels), int(y)) for im, y in zip(images, labels.tolist())]
