"""Multi-label mosaics of real handwritten digits: a small, offline multi-label task for demos and tests.

Each sample is a canvas divided into ``grid x grid`` cells; a few cells hold real 8x8 digits from scikit-learn's
digits set (shifted by a random offset inside their cell), the rest stay empty. The target is the set of digit classes
present (10 classes). The train and test mosaics are built from the disjoint train and test digit splits of
``miil.core.data.load_digits_split``, so held-out mosaics contain only unseen handwriting.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from miil.core.data import load_digits_split

__all__ = ["DigitMosaicDataset", "make_digit_mosaics"]


def make_digit_mosaics(
    split: str,
    *,
    num_samples: int,
    grid: int = 3,
    cell: int = 10,
    min_digits: int = 1,
    max_digits: int = 3,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Build mosaics.

    Args:
        split: "train" or "test" digits.
        num_samples: Number of mosaics.
        grid: Cells per side.
        cell: Cell side in pixels (>= 8; the digit is placed at a random offset inside it).
        min_digits: Fewest digits per mosaic.
        max_digits: Most digits per mosaic (at most ``grid * grid``).
        seed: Random seed (the same seed gives the same mosaics).

    Returns:
        ``(images [num_samples, 1, grid * cell, grid * cell] in [0, 1], targets [num_samples, 10] in {0, 1})``.
    """
    if cell < 8:
        raise ValueError(f"cell must be >= 8 pixels (the digits are 8x8), got {cell}")
    if not 1 <= min_digits <= max_digits <= grid * grid:
        raise ValueError(f"need 1 <= min_digits <= max_digits <= grid**2, got {min_digits}, {max_digits}, {grid}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    digits, labels = load_digits_split(split)
    rng = np.random.default_rng(seed)
    side = grid * cell
    images = np.zeros((num_samples, side, side), dtype=np.float32)
    targets = np.zeros((num_samples, 10), dtype=np.float32)
    for i in range(num_samples):
        count = int(rng.integers(min_digits, max_digits + 1))
        cells = rng.choice(grid * grid, size=count, replace=False)
        picks = rng.integers(0, len(digits), size=count)
        for c, p in zip(cells.tolist(), picks.tolist()):
            y0 = (c // grid) * cell + int(rng.integers(0, cell - 8 + 1))
            x0 = (c % grid) * cell + int(rng.integers(0, cell - 8 + 1))
            images[i, y0 : y0 + 8, x0 : x0 + 8] = digits[p] / 255.0
            targets[i, labels[p]] = 1.0
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(targets)


class DigitMosaicDataset(Dataset):
    """Mosaics of real digits as ``(image [channels, S, S], targets [10])`` samples.

    Args:
        split: "train" or "test" digits.
        num_samples: Number of mosaics.
        channels: 1 (grey) or 3 (the grey value repeated, for RGB backbones).
        seed: Random seed of the mosaics.
        mosaic_kwargs: Passed to :func:`make_digit_mosaics` (``grid``, ``cell``, ``min_digits``, ``max_digits``).
    """

    classes = [str(d) for d in range(10)]

    def __init__(
        self, split: str = "train", *, num_samples: int = 2000, channels: int = 1, seed: int = 0, **mosaic_kwargs
    ):
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        images, self.targets = make_digit_mosaics(split, num_samples=num_samples, seed=seed, **mosaic_kwargs)
        self.images = images.expand(-1, channels, -1, -1).contiguous()

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.targets[index]
