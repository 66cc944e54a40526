"""Training samplers: AudioSet's class-balanced sampling under DDP, and a sampler that announces each epoch.

Paper: Gazneli et al., 2022 (arXiv 2204.11479), Sec. 4. AudioSet is trained with a weighted random sampler (draws
with replacement, a clip's weight the sum of the inverse frequencies of its classes). The original used PyTorch's
``WeightedRandomSampler`` in one process; :class:`DistributedWeightedSampler` draws the same kind of sequence from
``seed + epoch`` and gives each rank every ``world``-th draw, so one and many processes see the same clips.

:class:`EpochAwareSampler` wraps any sampler and calls a hook from ``set_epoch``: the training engine calls
``set_epoch`` at the start of every epoch (also after a resume), which is how the batch augmentations learn when
mixing starts and how the EMA decay follows the original's per-epoch schedule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch.utils.data import Sampler

__all__ = ["DistributedWeightedSampler", "EpochAwareSampler"]


class DistributedWeightedSampler(Sampler[int]):
    """Weighted draws with replacement, sharded across DDP ranks, reproducible from ``seed + epoch``.

    Args:
        weights: One non-negative weight per dataset item.
        num_samples: Draws per epoch over all ranks (default: the dataset size).
        rank: This process's rank.
        world_size: Number of processes.
        seed: Base seed.
    """

    def __init__(
        self,
        weights: Sequence[float] | torch.Tensor,
        *,
        num_samples: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
    ):
        self.weights = torch.as_tensor(weights, dtype=torch.float64)
        if self.weights.dim() != 1 or len(self.weights) == 0 or (self.weights < 0).any() or self.weights.sum() <= 0:
            raise ValueError("weights must be a non-empty 1-D sequence of non-negative numbers with a positive sum")
        total = len(self.weights) if num_samples is None else int(num_samples)
        self.num_samples = -(-total // world_size)  # per rank, padded like DistributedSampler
        self.rank, self.world_size, self.seed, self.epoch = rank, world_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        draws = torch.multinomial(self.weights, self.num_samples * self.world_size, replacement=True, generator=g)
        return iter(draws[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return self.num_samples


class EpochAwareSampler(Sampler[int]):
    """Delegates to ``sampler`` and calls every hook with the epoch number whenever ``set_epoch`` is called.

    Args:
        sampler: The sampler that decides the order.
        hooks: Callables ``hook(epoch)``.
    """

    def __init__(self, sampler: Sampler[int], hooks: Sequence[Callable[[int], None]] = ()):
        self.sampler = sampler
        self.hooks = list(hooks)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
        for hook in self.hooks:
            hook(epoch)

    def __iter__(self) -> Iterator[int]:
        return iter(self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)
