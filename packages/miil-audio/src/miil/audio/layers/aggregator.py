"""EAT's transformer aggregator: a CLS token and learned positions over the waveform tokens, post-norm encoder.

Paper: Gazneli et al., 2022 (arXiv 2204.11479), Sec. 3.2. The encoder's ``[B, C, T]`` output, projected to the
embedding width, becomes ``T`` tokens; a learned CLS token is prepended, a learned position embedding of length
``T + 1`` is added, and PyTorch's post-norm ``TransformerEncoderLayer`` (GELU, dropout 0.1) stack runs, followed by
a final LayerNorm. The classifier reads the CLS output. CLS and positions start at zero, as in the original.

Changed from the original: clips of another length work without retraining. The position embedding's token part is
linearly interpolated to the actual token count on the fly (the CLS position is kept), and
:meth:`TransformerAggregator.resize_pos_embed` makes the change permanent for fine-tuning at a new length (the
original trainer nearest-interpolated CLS and tokens together).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["TransformerAggregator", "interpolate_pos_embed"]


def interpolate_pos_embed(pos_embed: torch.Tensor, num_tokens: int, *, num_prefix: int = 1) -> torch.Tensor:
    """Linearly resample the token part of a ``[1, prefix + T, C]`` position embedding to ``num_tokens`` tokens.

    Args:
        pos_embed: The position embedding (prefix positions first).
        num_tokens: New number of (non-prefix) tokens.
        num_prefix: Number of leading positions (the CLS token) kept as they are.
    """
    prefix, tokens = pos_embed[:, :num_prefix], pos_embed[:, num_prefix:]
    if tokens.shape[1] == num_tokens:
        return pos_embed
    if num_tokens < 1:
        raise ValueError(f"cannot resize the position embedding to {num_tokens} tokens")
    resized = F.interpolate(tokens.transpose(1, 2), size=num_tokens, mode="linear", align_corners=False)
    return torch.cat([prefix, resized.transpose(1, 2)], dim=1)


class TransformerAggregator(nn.Module):
    """CLS token + learned positions + post-norm transformer encoder + final LayerNorm; returns the CLS output.

    Args:
        embed_dim: Token width.
        num_tokens: Number of tokens the position embedding is built for (``seq_len // 1024`` in the paper).
        depth: Number of encoder layers.
        num_heads: Attention heads.
        mlp_dim: Feed-forward width.
        dropout: Dropout inside the encoder layers.
        dynamic_length: Interpolate the position embedding when the token count differs from ``num_tokens``;
            when False such inputs raise an error.
    """

    def __init__(
        self,
        *,
        embed_dim: int,
        num_tokens: int,
        depth: int,
        num_heads: int,
        mlp_dim: int,
        dropout: float = 0.1,
        dynamic_length: bool = True,
    ):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim = embed_dim
        self.num_tokens = num_tokens
        self.dynamic_length = dynamic_length
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens + 1, embed_dim))
        layer = nn.TransformerEncoderLayer(
            d_model=embed_dim,
            nhead=num_heads,
            dim_feedforward=mlp_dim,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=False,
        )
        # As in the original, the stack is made of copies of one freshly initialised layer.
        self.encoder = nn.TransformerEncoder(
            layer, num_layers=depth, norm=nn.LayerNorm(embed_dim), enable_nested_tensor=False
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[B, T, C]`` tokens -> ``[B, C]`` CLS output."""
        b, t, _ = tokens.shape
        pos = self.pos_embed
        if t != self.num_tokens:
            if not self.dynamic_length:
                raise ValueError(
                    f"got {t} tokens but the position embedding has {self.num_tokens}; enable dynamic_length or "
                    "call resize_pos_embed"
                )
            pos = interpolate_pos_embed(pos, t)
        x = torch.cat([self.cls_token.expand(b, -1, -1), tokens], dim=1) + pos
        return self.encoder(x)[:, 0]

    @torch.no_grad()
    def resize_pos_embed(self, num_tokens: int) -> None:
        """Permanently resize the position embedding to ``num_tokens`` tokens (fine-tuning at a new clip length).

        Args:
            num_tokens: The new token count.
        """
        self.pos_embed = nn.Parameter(interpolate_pos_embed(self.pos_embed.data, num_tokens))
        self.num_tokens = num_tokens
