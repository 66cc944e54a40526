"""Which K images of an album the model sees: a random subset in training, a sorted uniform subset in evaluation.

Paper: PETA (arXiv 2109.12499), section 4: albums are represented by K = 32 images. The original samplers
(``ValOrderedSampler``) differ from what is done here:
    * evaluation took ``np.linspace`` over the unsorted ``os.listdir`` order (file-system dependent); here the files
      are sorted first, so the subset is the same on every machine;
    * its ``rand_permute`` padding of short albums came out short for albums of fewer than K/2 images; here short
      albums keep all their images and are padded with a mask (``pad="mask"``), or, for the original behaviour,
      repeat images up to K (``pad="duplicate"``).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["PAD_MODES", "eval_album_indices", "sample_album_indices", "train_album_indices"]

PAD_MODES = ("mask", "duplicate")


def _check(n: int, k: int, pad: str) -> None:
    if n < 1:
        raise ValueError(f"an album needs at least one image, got {n}")
    if k < 1:
        raise ValueError(f"album_size must be >= 1, got {k}")
    if pad not in PAD_MODES:
        raise ValueError(f"pad must be one of {PAD_MODES}, got {pad!r}")


def eval_album_indices(n: int, k: int, *, pad: str = "mask") -> list[int]:
    """Deterministic subset: ``k`` indices spread uniformly over ``0..n-1`` (the files sorted by name).

    Args:
        n: Number of images in the album.
        k: Images per album (K).
        pad: For ``n < k``: "mask" keeps the ``n`` images (the caller pads), "duplicate" repeats them to ``k``.

    Returns:
        Sorted indices; distinct unless ``pad="duplicate"`` and ``n < k``.
    """
    _check(n, k, pad)
    if n <= k and pad == "mask":
        return list(range(n))
    # floor(x + 0.5): positions at least 1 apart (n >= k) give distinct indices.
    return np.floor(np.linspace(0, n - 1, k) + 0.5).astype(int).tolist()


def train_album_indices(n: int, k: int, *, pad: str = "mask", generator: torch.Generator | None = None) -> list[int]:
    """Random subset of ``min(n, k)`` distinct images, kept in file order (so a position embedding sees the
    album's order); with ``pad="duplicate"`` short albums are filled up to ``k`` with random repeats.

    Args:
        n: Number of images in the album.
        k: Images per album (K).
        pad: "mask" or "duplicate" (see :func:`eval_album_indices`).
        generator: Torch generator (default: the global one, which the training engine seeds per epoch).
    """
    _check(n, k, pad)
    chosen = sorted(torch.randperm(n, generator=generator)[: min(n, k)].tolist())
    if n < k and pad == "duplicate":
        extra = torch.randint(n, (k - n,), generator=generator).tolist()
        chosen = sorted(chosen + extra)
    return chosen


def sample_album_indices(
    n: int, k: int, *, train: bool, pad: str = "mask", generator: torch.Generator | None = None
) -> list[int]:
    """:func:`train_album_indices` when ``train`` else :func:`eval_album_indices`."""
    if train:
        return train_album_indices(n, k, pad=pad, generator=generator)
    return eval_album_indices(n, k, pad=pad)
