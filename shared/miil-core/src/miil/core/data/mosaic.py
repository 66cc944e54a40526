"""Multi-label mosaics of real handwritten digits: a small, offline multi-label task for demos, tests and miniatures.

Each mosaic is a canvas of ``grid x grid`` cells; a few cells hold one of scikit-learn's real 8x8 digits (placed at a
random offset when the cell is larger than the digit), the others stay empty. The target is the set of digit classes
present (10 classes). Classes are drawn with weights ``decay**c`` (or ``class_weights``): ``decay=1`` gives uniform
classes, as the ML-Decoder demo uses, and ``decay<1`` a long tail where some classes appear in most images and others
in a few percent, like COCO or OpenImages, which is what makes the class prior matter for partially annotated
training ("Multi-label Classification with Partial Annotations using Class-aware Selective Loss", arXiv 2110.10955).
Train mosaics use only digits of the core's train split and test mosaics only digits of its test split
(``miil.core.data.load_digits_split``), so held-out mosaics contain only unseen handwriting.

:func:`plan_digit_mosaics` draws where each digit goes; :func:`make_digit_mosaics` renders the plan as grey arrays,
and the miniature dataset generators (``miil.core.miniature``) render the same plans as photographs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from .embedded import load_digits_split

__all__ = ["DigitMosaicDataset", "MosaicDigit", "make_digit_mosaics", "plan_digit_mosaics"]

_DIGIT = 8  # side of scikit-learn's digits


@dataclass(frozen=True)
class MosaicDigit:
    """One digit placed on a mosaic.

    Args:
        label: Class of the digit (0-9).
        digit: Row of the digit in the split's images (``load_digits_split(split)[0][digit]``).
        top: Top row of the digit on the canvas, in pixels.
        left: Left column of the digit on the canvas, in pixels.
    """

    label: int
    digit: int
    top: int
    left: int


def _class_probs(class_weights: Sequence[float] | None, decay: float, num_classes: int) -> np.ndarray:
    default = decay ** np.arange(num_classes)
    weights = np.asarray(class_weights if class_weights is not None else default, dtype=np.float64)
    if weights.shape != (num_classes,) or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(
            f"class_weights must be {num_classes} non-negative numbers with a positive sum, got {weights.tolist()}"
        )
    return weights / weights.sum()


def plan_digit_mosaics(
    split: str,
    num_images: int,
    *,
    grid: int = 3,
    cell: int = 8,
    min_digits: int = 1,
    max_digits: int = 3,
    class_weights: Sequence[float] | None = None,
    decay: float = 1.0,
    num_classes: int = 10,
    balanced: bool = False,
    seed: int = 0,
) -> list[list[MosaicDigit]]:
    """Draw the layout of ``num_images`` mosaics: which real digit goes where.

    Class ``k`` is drawn as digit ``k % 10``; with more than 10 classes the renderer tells the copies apart (the
    miniature photographs paint them in different colours).

    Args:
        split: ``"train"`` or ``"test"``: which split of the real digits the mosaics use.
        num_images: Number of mosaics.
        grid: Cells per side.
        cell: Cell side in pixels (>= 8; a digit is placed at a random offset inside its cell).
        min_digits: Fewest digits per mosaic.
        max_digits: Most digits per mosaic (at most ``grid**2``).
        class_weights: Sampling weight of each digit class; defaults to ``decay**c`` for digit ``c``.
        decay: Ratio between the weights of consecutive digits when ``class_weights`` is not given (1: uniform).
        num_classes: Number of classes (``class_weights`` has one weight per class).
        balanced: Deal the classes from shuffled rounds of all classes instead of drawing them independently, so
            every class occurs equally often (up to one) over the whole plan; ``class_weights`` is then ignored.
        seed: Random seed (the same seed gives the same plan).

    Returns:
        One list of :class:`MosaicDigit` per mosaic.
    """
    if cell < _DIGIT:
        raise ValueError(f"cell must be >= 8 pixels (the digits are 8x8), got {cell}")
    if not 1 <= min_digits <= max_digits <= grid * grid:
        raise ValueError(f"need 1 <= min_digits <= max_digits <= grid**2, got {min_digits}, {max_digits}, {grid}")
    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    probs = _class_probs(class_weights, decay, num_classes) if not balanced else None
    _, labels = load_digits_split(split)
    by_digit = [np.flatnonzero(labels == c) for c in range(10)]
    rng = np.random.default_rng(seed)
    deck: list[int] = []
    plans = []
    for _ in range(num_images):
        count = int(rng.integers(min_digits, max_digits + 1))
        cells = rng.choice(grid * grid, size=count, replace=False)
        if probs is not None:
            classes = rng.choice(num_classes, size=count, p=probs).tolist()
        else:
            while len(deck) < count:
                deck += rng.permutation(num_classes).tolist()
            classes, deck = deck[:count], deck[count:]
        items = []
        for c, k in zip(cells.tolist(), classes):
            pool = by_digit[k % 10]
            digit = int(pool[rng.integers(len(pool))])
            top = (c // grid) * cell + int(rng.integers(0, cell - _DIGIT + 1))
            left = (c % grid) * cell + int(rng.integers(0, cell - _DIGIT + 1))
            items.append(MosaicDigit(int(k), digit, top, left))
        plans.append(items)
    return plans


def make_digit_mosaics(
    split: str,
    num_images: int,
    *,
    grid: int = 3,
    cell: int = 8,
    min_digits: int = 1,
    max_digits: int = 3,
    class_weights: Sequence[float] | None = None,
    decay: float = 1.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Render digit mosaics as grey images.

    Args:
        split: ``"train"`` or ``"test"`` digits.
        num_images: Number of mosaics.
        grid: Cells per side.
        cell: Cell side in pixels (>= 8).
        min_digits: Fewest digits per mosaic.
        max_digits: Most digits per mosaic (at most ``grid**2``).
        class_weights: Sampling weight of each digit class.
        decay: Long-tail ratio of the class weights when ``class_weights`` is not given (1: uniform).
        seed: Random seed.

    Returns:
        ``(images, targets)``: uint8 ``[N, grid*cell, grid*cell]`` and float32 ``[N, 10]`` in {0, 1}.
    """
    plans = plan_digit_mosaics(
        split,
        num_images,
        grid=grid,
        cell=cell,
        min_digits=min_digits,
        max_digits=max_digits,
        class_weights=class_weights,
        decay=decay,
        seed=seed,
    )
    digits, _ = load_digits_split(split)
    side = grid * cell
    images = np.zeros((num_images, side, side), dtype=np.uint8)
    targets = np.zeros((num_images, 10), dtype=np.float32)
    for i, items in enumerate(plans):
        for d in items:
            images[i, d.top : d.top + _DIGIT, d.left : d.left + _DIGIT] = digits[d.digit]
            targets[i, d.label] = 1.0
    return images, targets


class DigitMosaicDataset(Dataset):
    """Digit mosaics as ``(float [channels, S, S] image in [0, 1], float32 [10] target)``; ``targets`` is dense.

    ``targets`` is a plain ``[N, 10]`` tensor, so partial-label simulations can replace it in place.

    Args:
        split: ``"train"`` or ``"test"`` digits.
        num_images: Number of mosaics (default 3,000 for train, 1,000 for test).
        channels: 1 (grey) or 3 (the grey value repeated, for RGB backbones).
        seed: Random seed (defaults differ per split so the two never share a layout stream).
        transform: Optional tensor-to-tensor transform.
        grid: Cells per side.
        cell: Cell side in pixels.
        min_digits: Fewest digits per mosaic.
        max_digits: Most digits per mosaic.
        class_weights: Sampling weight of each digit class.
        decay: Long-tail ratio of the class weights (1: uniform classes).
    """

    classes = [str(d) for d in range(10)]

    def __init__(
        self,
        split: str = "train",
        *,
        num_images: int | None = None,
        channels: int = 1,
        seed: int | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        grid: int = 3,
        cell: int = 8,
        min_digits: int = 1,
        max_digits: int = 3,
        class_weights: Sequence[float] | None = None,
        decay: float = 1.0,
    ):
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        n = num_images if num_images is not None else (3000 if split == "train" else 1000)
        seed = seed if seed is not None else (0 if split == "train" else 1)
        images, targets = make_digit_mosaics(
            split,
            n,
            grid=grid,
            cell=cell,
            min_digits=min_digits,
            max_digits=max_digits,
            class_weights=class_weights,
            decay=decay,
            seed=seed,
        )
        self.split = split
        self.images = torch.from_numpy(images).float().div_(255.0).unsqueeze(1).expand(-1, channels, -1, -1)
        self.images = self.images.contiguous()
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
