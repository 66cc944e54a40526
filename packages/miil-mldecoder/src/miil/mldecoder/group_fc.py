"""Group fully-connected pooling: the output stage of ML-Decoder.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933), method
("group-decoding"). Each of the ``K`` decoder queries is expanded to ``g = ceil(N / K)`` class logits by its own
``[D, g]`` projection; the ``K * g`` logits are truncated to the ``N`` classes and a per-class bias is added.

Changed from the reference code: the reference loops over the ``K`` groups in Python (one small matmul per
group); here all groups are one batched matrix product, which gives the same numbers. The group size is the exact
``ceil(N / K)`` (the reference's ``int(N / K + 0.999)`` undershoots when the fractional part is below 0.001).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

__all__ = ["GroupFC", "group_size"]


def group_size(num_classes: int, num_groups: int) -> int:
    """Number of logits each query produces: ``ceil(num_classes / num_groups)``.

    Args:
        num_classes: Number of classes ``N``.
        num_groups: Number of query groups ``K``.
    """
    if num_classes < 1 or num_groups < 1:
        raise ValueError(f"num_classes and num_groups must be >= 1, got {num_classes} and {num_groups}")
    return math.ceil(num_classes / num_groups)


class GroupFC(nn.Module):
    """Per-group linear maps from ``[B, K, D]`` decoder outputs to ``[B, N]`` logits, as one batched matmul.

    Args:
        num_groups: Number of query groups ``K``.
        embed_dim: Decoder width ``D``.
        num_classes: Number of classes ``N``; each group produces ``ceil(N / K)`` logits and the surplus of the last
            groups is dropped.
    """

    def __init__(self, num_groups: int, embed_dim: int, num_classes: int):
        super().__init__()
        if num_groups > num_classes:
            raise ValueError(f"num_groups ({num_groups}) may not exceed num_classes ({num_classes})")
        self.num_groups = num_groups
        self.num_classes = num_classes
        self.group_size = group_size(num_classes, num_groups)
        self.weight = nn.Parameter(torch.empty(num_groups, embed_dim, self.group_size))
        self.bias = nn.Parameter(torch.empty(num_classes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Same distributions as the reference: xavier-normal over the [K, D, g] tensor, zero bias.
        nn.init.xavier_normal_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Map decoder outputs to logits.

        Args:
            h: ``[B, K, D]`` decoder outputs, one row per query group.

        Returns:
            ``[B, N]`` logits.
        """
        if h.ndim != 3 or h.shape[1] != self.num_groups:
            raise ValueError(f"GroupFC expects [B, {self.num_groups}, D] inputs, got {tuple(h.shape)}")
        # [K, B, D] @ [K, D, g] -> [K, B, g]: every group in one batched product.
        out = torch.bmm(h.transpose(0, 1), self.weight)
        return out.transpose(0, 1).flatten(1)[:, : self.num_classes] + self.bias

    def extra_repr(self) -> str:
        return f"num_groups={self.num_groups}, num_classes={self.num_classes}, group_size={self.group_size}"
