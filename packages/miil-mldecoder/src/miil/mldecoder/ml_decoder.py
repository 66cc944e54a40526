"""ML-Decoder: an attention-based classification head that scales to thousands of classes.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933), method.
Backbone tokens are projected to the decoder width with a ReLU, ``K`` query groups cross-attend to them in one
decoder layer without self-attention (:class:`~miil.mldecoder.decoder_layer.MLDecoderLayer`), and group
fully-connected pooling (:class:`~miil.mldecoder.group_fc.GroupFC`) turns the ``K`` outputs into ``N`` logits.

Defaults are the reference's: ``K = min(100, N)`` groups, width 768, 8 heads, feed-forward 2048, dropout 0.1,
frozen ``N(0, 1)`` queries (``learnable_queries=True`` trains them). Inputs may be ``NCHW`` maps (CNNs), ``NHWC``
maps (Swin-like models) or ``[B, L, C]`` tokens (ViTs), so the head sits on any timm backbone.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from miil.core.backbones import to_tokens

from .decoder_layer import MLDecoderLayer
from .group_fc import GroupFC

__all__ = ["DEFAULT_NUM_GROUPS", "MLDecoder", "MLDecoderBase", "resolve_num_groups"]

DEFAULT_NUM_GROUPS = 100


def resolve_num_groups(num_classes: int, num_groups: int | None) -> int:
    """The number of query groups ``K``: ``num_groups`` (default 100, also for values <= 0), capped at ``N``.

    Args:
        num_classes: Number of classes ``N``.
        num_groups: Requested number of groups; ``None`` or <= 0 selects the paper's default of 100.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    k = DEFAULT_NUM_GROUPS if num_groups is None or num_groups <= 0 else int(num_groups)
    return min(k, num_classes)


class MLDecoderBase(nn.Module):
    """What every ML-Decoder variant shares: the ReLU input projection and the decoder layer.

    Args:
        in_features: Channel width ``C`` of the backbone features.
        embed_dim: Decoder width ``D``.
        num_heads: Attention heads.
        ffn_dim: Feed-forward hidden width.
        dropout: Decoder dropout.
        input_format: Layout of 4-D inputs, "NCHW" or "NHWC"; 3-D inputs are always ``[B, L, C]`` tokens.
        layer_norm_eps: Epsilon of the decoder's layer norms.
    """

    def __init__(
        self,
        *,
        in_features: int,
        embed_dim: int = 768,
        num_heads: int = 8,
        ffn_dim: int = 2048,
        dropout: float = 0.1,
        input_format: str = "NCHW",
        layer_norm_eps: float = 1e-5,
    ):
        super().__init__()
        if input_format.upper() not in ("NCHW", "NHWC"):
            raise ValueError(f"input_format must be 'NCHW' or 'NHWC', got {input_format!r}")
        if in_features < 1 or embed_dim < 1:
            raise ValueError(f"in_features and embed_dim must be >= 1, got {in_features} and {embed_dim}")
        self.in_features = in_features
        self.embed_dim = embed_dim
        self.input_format = input_format.upper()
        self.proj = nn.Linear(in_features, embed_dim)
        self.layer = MLDecoderLayer(embed_dim, num_heads, ffn_dim, dropout, layer_norm_eps)

    def memory(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features as projected ``[B, L, D]`` decoder memory."""
        tokens = to_tokens(x, self.input_format)
        if tokens.shape[-1] != self.in_features:
            raise ValueError(
                f"{type(self).__name__} was built for {self.in_features}-channel features, got input of shape "
                f"{tuple(x.shape)} (layout {self.input_format} for 4-D inputs)"
            )
        return F.relu(self.proj(tokens))


class MLDecoder(MLDecoderBase):
    """ML-Decoder classification head with ``K`` query groups and group fully-connected pooling.

    Args:
        num_classes: Number of classes ``N``.
        in_features: Channel width ``C`` of the backbone features.
        num_groups: Query groups ``K``; ``None`` (or <= 0) gives the paper's 100. Always capped at ``N``, so COCO's
            80 classes get 80 queries.
        embed_dim: Decoder width ``D``.
        num_heads: Attention heads.
        ffn_dim: Feed-forward hidden width.
        dropout: Decoder dropout.
        learnable_queries: Train the queries; the paper keeps them frozen at their random initial values.
        input_format: Layout of 4-D inputs, "NCHW" or "NHWC".
        layer_norm_eps: Epsilon of the decoder's layer norms.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        in_features: int,
        num_groups: int | None = None,
        embed_dim: int = 768,
        num_heads: int = 8,
        ffn_dim: int = 2048,
        dropout: float = 0.1,
        learnable_queries: bool = False,
        input_format: str = "NCHW",
        layer_norm_eps: float = 1e-5,
    ):
        super().__init__(
            in_features=in_features,
            embed_dim=embed_dim,
            num_heads=num_heads,
            ffn_dim=ffn_dim,
            dropout=dropout,
            input_format=input_format,
            layer_norm_eps=layer_norm_eps,
        )
        self.num_classes = num_classes
        self.num_groups = resolve_num_groups(num_classes, num_groups)
        self.learnable_queries = learnable_queries
        queries = torch.randn(self.num_groups, embed_dim)  # nn.Embedding's N(0, 1) initialisation
        if learnable_queries:
            self.query_embed = nn.Parameter(queries)
        else:
            self.register_buffer("query_embed", queries)
        self.group_fc = GroupFC(self.num_groups, embed_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Args:
            x: Backbone features: ``[B, C, H, W]`` (or ``[B, H, W, C]`` with ``input_format="NHWC"``) or
                ``[B, L, C]`` tokens.

        Returns:
            ``[B, N]`` logits.
        """
        return self.group_fc(self.layer(self.query_embed, self.memory(x)))

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, num_groups={self.num_groups}, in_features={self.in_features}, "
            f"embed_dim={self.embed_dim}, learnable_queries={self.learnable_queries}"
        )
