"""Repeated-augmentation sampler that works in one process and under DDP.

Paper: USI (arXiv 2204.03475), the authors' ``train.py``: repeated augmentation x3 (Hoffer et al., 2020; DeiT's
``RASampler``): each image is drawn ``num_repeats`` times per epoch, and the copies go to different processes, so every
copy gets its own augmentation. The original run used timm 0.5.4, whose loader asserts ``num_aug_repeats == 0`` outside
distributed training, so the default recipe crashed on one GPU; this sampler takes its rank and world size as arguments
and is the same code path for 1 and N processes.

Two epoch lengths:

* ``"dataset"`` (the original and DeiT's behaviour, the preset's default): an epoch has as many draws as the dataset
  has images, i.e. about ``1 / num_repeats`` of the images, each ``num_repeats`` times. 300 epochs cost what 300
  plain epochs cost.
* ``"repeats"``: every image appears ``num_repeats`` times in every epoch (``num_repeats`` times longer epochs).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

__all__ = ["EPOCH_MODES", "RepeatedAugSampler"]

EPOCH_MODES = ("dataset", "repeats")


class RepeatedAugSampler(Sampler[int]):
    """Shuffled indices, each repeated ``num_repeats`` times, dealt round-robin to ``world_size`` processes.

    The global order of one epoch is a permutation (seeded by ``seed + epoch``) with every index repeated
    ``num_repeats`` times in a row; it is padded by wrapping around to a multiple of ``world_size``, and rank ``r``
    takes positions ``r, r + world_size, ...``. So with ``world_size >= num_repeats`` the copies of an image land on
    different processes, as in DeiT. All ranks yield the same number of indices, as DDP requires.

    Args:
        num_samples: Size of the dataset.
        num_repeats: Copies of each image (the paper's 3); 1 gives a plain shuffling sampler.
        rank: This process's rank.
        world_size: Number of processes.
        seed: Seed shared by all ranks.
        shuffle: Shuffle the images every epoch.
        epoch_mode: "dataset" (epoch length = dataset size) or "repeats" (every image ``num_repeats`` times).
    """

    def __init__(
        self,
        num_samples: int,
        *,
        num_repeats: int = 3,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        shuffle: bool = True,
        epoch_mode: str = "dataset",
    ):
        if num_samples < 1:
            raise ValueError(f"the dataset is empty (num_samples={num_samples})")
        if num_repeats < 1:
            raise ValueError(f"num_repeats must be >= 1, got {num_repeats}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        if epoch_mode not in EPOCH_MODES:
            raise ValueError(f"epoch_mode must be one of {EPOCH_MODES}, got {epoch_mode!r}")
        self.num_samples = int(num_samples)
        self.num_repeats = int(num_repeats)
        self.rank, self.world_size = int(rank), int(world_size)
        self.seed, self.shuffle, self.epoch_mode = int(seed), bool(shuffle), epoch_mode
        self.epoch = 0
        self.per_rank_total = math.ceil(self.num_samples * self.num_repeats / self.world_size)
        if epoch_mode == "dataset":
            self.per_rank = math.ceil(self.num_samples / self.world_size)
        else:
            self.per_rank = self.per_rank_total

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def global_order(self) -> torch.Tensor:
        """The padded global index order of the current epoch, before it is dealt to the ranks."""
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_samples, generator=g)
        else:
            order = torch.arange(self.num_samples)
        order = order.repeat_interleave(self.num_repeats)
        total = self.per_rank_total * self.world_size
        if total > len(order):
            order = torch.cat([order, order[: total - len(order)]])
        return order

    def __iter__(self) -> Iterator[int]:
        mine = self.global_order()[self.rank :: self.world_size][: self.per_rank]
        return iter(mine.tolist())

    def __len__(self) -> int:
        return self.per_rank
