"""STAM's temporal transformer: a CLS token attends over the per-frame embeddings of a clip.

Paper: "An Image is Worth 16x16 Words, What is a Video Worth?" (STAM), Sharir, Noy and Zelnik-Manor, 2021
(arXiv 2103.13915), section 3 (temporal aggregation). The frame embeddings (the spatial ViT's CLS features) get a
learnable CLS token prepended and a learnable temporal position embedding added; a stack of transformer encoder
layers mixes them and the output CLS token represents the clip.

The module is miil-core's :class:`~miil.core.layers.ClsTransformer` (the aggregator STAM shares with PETA and EAT)
with STAM's settings, the original ``TAggregate``'s: 6 layers of PyTorch's ``nn.TransformerEncoderLayer`` with its
defaults (8 heads, feed-forward width 2048, dropout 0.1, ReLU, post-norm) and a final LayerNorm; CLS token,
positions and linear weights from a normal truncated at two standard deviations (std 0.02), zero biases. Changed
from the original: a pre-norm option, batch-first tensors, and the position embedding is resized (linear
interpolation over time, the CLS position kept) both when a checkpoint for another clip length is loaded and when a
clip of another length is fed in, so one set of weights serves any T.
"""

from __future__ import annotations

from typing import Any

import torch

from miil.core.layers import ClsTransformer, resize_pos_embed

__all__ = ["TemporalTransformer", "resize_temporal_pos_embed"]


def resize_temporal_pos_embed(pos_embed: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Resize a ``[1, T0 + 1, D]`` temporal position embedding to ``[1, num_frames + 1, D]`` (CLS position kept,
    frame positions linearly interpolated; see :func:`miil.core.layers.resize_pos_embed`).

    Args:
        pos_embed: Position embedding with the CLS position first.
        num_frames: Target number of frames ``T``.
    """
    return resize_pos_embed(pos_embed, num_frames)


class TemporalTransformer(ClsTransformer):
    """The STAM temporal aggregator: ``[B, T, D]`` frame embeddings in, ``[B, D]`` clip embedding (CLS) out.

    Args:
        num_frames: Clip length ``T`` the position embedding is created for (other lengths are interpolated).
        embed_dim: Width ``D`` of the frame embeddings and of the transformer.
        use_pos_embed: Add the learnable temporal position embedding; without it the aggregation ignores frame
            order.
        kwargs: The other :class:`~miil.core.layers.ClsTransformer` options, whose defaults are the original's:
            ``depth=6``, ``num_heads=8``, ``mlp_dim=2048``, ``dropout=0.1``, ``activation="relu"``,
            ``norm_first=False`` (post-norm), ``final_norm=True``, ``layer_norm_eps=1e-5``, and ``pos_embed_std=0.02``
            (suited to fine-tuning a pretrained ViT; a small model trained from scratch learns frame order much sooner
            with a larger one).
    """

    mask_words = ("clip", "frame")

    def __init__(self, *, num_frames: int = 16, embed_dim: int = 768, use_pos_embed: bool = True, **kwargs: Any):
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        super().__init__(embed_dim, pos_embed=use_pos_embed, num_tokens=num_frames, **kwargs)

    @property
    def num_frames(self) -> int:
        """Clip length ``T`` the position embedding was made for."""
        return self.num_tokens
