"""Multi-label digit mosaics: real handwritten digits placed on a canvas; the labels are the digits present.

Embedded real data for the CSL demo and tests (no downloads): scikit-learn's 1,797 real 8x8 digits
(``miil.core.data.load_digits_split``) are pasted into random cells of a ``grid x grid`` canvas. Digit classes are
drawn from a long-tailed distribution (weight ``decay**c`` for digit ``c``), so, like COCO or OpenImages, some
classes appear in most images and others in a few percent of them, which is what makes the class prior matter
for partially annotated training ("Multi-label Classification with Partial Annotations using Class-aware Selective
Loss", arXiv 2110.10955). Train mosaics use only digits of the core's train split and test mosaics only digits of its
test split, so the held-out evaluation never sees a training digit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from miil.core.data import load_digits_split

__all__ = ["DigitMosaicDataset", "make_digit_mosaics"]

_CELL = 8


def make_digit_mosaics(
    split: str,
    num_images: int,
    *,
    grid: int = 3,
    min_digits: int = 1,
    max_digits: int = 4,
    class_weights: Sequence[float] | None = None,
    decay: float = 0.7,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Build mosaics of real digits.

    Args:
        split: ``"train"`` or ``"test"``: which split of the real digits the mosaics are built from.
        num_images: Number of mosaics.
        grid: The canvas has ``grid x grid`` cells of 8x8 pixels.
        min_digits: Fewest digits per mosaic.
        max_digits: Most digits per mosaic (at most ``grid**2``).
        class_weights: Sampling weight of each digit class; defaults to ``decay**c`` for digit ``c``.
        decay: Ratio between the weights of consecutive digits when ``class_weights`` is not given.
        seed: Random seed.

    Returns:
        ``(images, targets)``: uint8 ``[N, 8*grid, 8*grid]`` and float32 ``[N, 10]`` in {0, 1}.
    """
    if not 1 <= min_digits <= max_digits <= grid * grid:
        raise ValueError(f"need 1 <= min_digits <= max_digits <= grid**2, got {min_digits}, {max_digits}, {grid}")
    if num_images < 1:
        raise ValueError(f"num_images must be positive, got {num_images}")
    digits, labels = load_digits_split(split)
    weights = np.asarray(class_weights if class_weights is not None else decay ** np.arange(10), dtype=np.float64)
    if weights.shape != (10,) or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"class_weights must be 10 non-negative numbers with a positive sum, got {weights.tolist()}")
    probs = weights / weights.sum()
    by_class = [np.flatnonzero(labels == c) for c in range(10)]
    rng = np.random.default_rng(seed)
    side = grid * _CELL
    images = np.zeros((num_images, side, side), dtype=np.uint8)
    targets = np.zeros((num_images, 10), dtype=np.float32)
    for i in range(num_images):
        k = int(rng.integers(min_digits, max_digits + 1))
        cells = rng.choice(grid * grid, size=k, replace=False)
        classes = rng.choice(10, size=k, p=probs)
        for cell, c in zip(cells, classes):
            digit = digits[by_class[c][rng.integers(len(by_class[c]))]]
            r, col = divmod(int(cell), grid)
            images[i, r * _CELL : (r + 1) * _CELL, col * _CELL : (col + 1) * _CELL] = digit
            targets[i, c] = 1.0
    return images, targets


class DigitMosaicDataset(Dataset):
    """Digit mosaics as ``(float [1, H, W] image in [0, 1], float32 [10] target)``; ``targets`` is dense.

    Args:
        split: ``"train"`` or ``"test"`` digits.
        num_images: Number of mosaics (default 3,000 for train, 1,000 for test).
        grid: Cells per side.
        min_digits: Fewest digits per mosaic.
        max_digits: Most digits per mosaic.
        decay: Long-tail ratio of the class weights.
        seed: Random seed (defaults differ per split so the two never share a layout stream).
        transform: Optional tensor-to-tensor transform.
    """

    def __init__(
        self,
        split: str = "train",
        *,
        num_images: int | None = None,
        grid: int = 3,
        min_digits: int = 1,
        max_digits: int = 4,
        decay: float = 0.7,
        seed: int | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        n = num_images if num_images is not None else (3000 if split == "train" else 1000)
        seed = seed if seed is not None else (0 if split == "train" else 1)
        images, targets = make_digit_mosaics(
            split, n, grid=grid, min_digits=min_digits, max_digits=max_digits, decay=decay, seed=seed
        )
        self.split = split
        self.classes = [str(d) for d in range(10)]
        self.images = torch.from_numpy(images).float().div_(255.0).unsqueeze(1)
        self.targets = torch.from_numpy(targets)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.images[index]
        if self.transform is not None:
            img = self.transform(img)
        return img, self.targets[index].clone()

    def __repr__(self) -> str:
        freq = ", ".join(f"{c}:{f:.2f}" for c, f in zip(self.classes, self.targets.clamp(min=0).mean(0).tolist()))
        return f"{type(self).__name__}(split={self.split!r}, samples={len(self)}, class frequency {freq})"
