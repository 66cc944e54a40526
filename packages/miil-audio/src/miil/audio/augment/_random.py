"""Random draws for the batched augmentations: from a given generator (reproducible) or torch's global one.

Draws happen on the generator's device and are moved to the data's device, so a CPU generator seeds augmentations
of CUDA batches too. Without a generator the global RNG of the data's device is used (the training engine seeds it
per epoch and rank, which keeps resumed runs exact).
"""

from __future__ import annotations

import torch

__all__ = ["as_batch", "rand", "randint", "randn", "randperm", "restore"]


def _device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    return generator.device if generator is not None else device


def rand(shape, *, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=_device(generator, device)).to(device)


def randn(shape, *, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=_device(generator, device)).to(device)


def randint(low: int, high: int, shape, *, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Integers in ``[low, high)``."""
    return torch.randint(low, high, shape, generator=generator, device=_device(generator, device)).to(device)


def randperm(n: int, *, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.randperm(n, generator=generator, device=_device(generator, device)).to(device)


def as_batch(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """``[B, L]`` or ``[B, 1, L]`` waveforms as ``[B, L]``, with the shape to restore."""
    if x.dim() == 3 and x.shape[1] == 1:
        return x[:, 0], tuple(x.shape)
    if x.dim() == 2:
        return x, tuple(x.shape)
    raise ValueError(f"expected waveforms of shape [B, L] or [B, 1, L], got {tuple(x.shape)}")


def restore(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    return x.reshape(shape[:-1] + (x.shape[-1],))
