"""Frame averaging: the temporal baseline STAM is compared with.

Paper: STAM (arXiv 2103.13915), section 4; the original code ships it as ``MeanAggregate``. The per-frame
embeddings of a clip are averaged, so the clip embedding does not depend on frame order: a model built on it
cannot tell a motion from its reverse.
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["FrameAverage"]


class FrameAverage(nn.Module):
    """``[B, T, D]`` frame embeddings in, their mean over time ``[B, D]`` out (no parameters).

    Args:
        embed_dim: Width ``D`` of the frame embeddings (checked on input).
    """

    def __init__(self, *, embed_dim: int):
        super().__init__()
        self.embed_dim = embed_dim

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.ndim != 3 or frames.shape[-1] != self.embed_dim:
            raise ValueError(f"expected [B, T, {self.embed_dim}] frame embeddings, got {tuple(frames.shape)}")
        return frames.mean(dim=1)

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}"
