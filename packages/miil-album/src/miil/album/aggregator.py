"""The album transformer: a CLS token attends over the embeddings of an album's images.

Paper: "PETA: Photo Albums Event Recognition using Transformers Attention", Glaser et al., 2021 (arXiv 2109.12499),
section 3 (album representation with a transformer encoder). The original ``TAggregate`` stacks PyTorch's
``nn.TransformerEncoderLayer`` with its defaults (8 heads, feed-forward 2048, dropout 0.1, ReLU, post-norm), adds a
final LayerNorm, a learnable CLS token and a learnable position embedding, and classifies the CLS output.

Changed from the original:
    * albums of any size: images are padded and masked out of the attention with a key-padding mask, instead of
      duplicating images up to a fixed length (``mask`` marks the real images);
    * the position embedding is optional and off by default: albums are unordered sets, and without it the output
      does not depend on the order of the images (the released ``peta_32`` checkpoint was trained with it on);
    * the attention of every layer and head can be returned (the original kept the last layer's, head-averaged);
    * ``norm_first=True`` gives the pre-norm variant the paper's figure draws (the code is post-norm).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["AlbumEncoderLayer", "AlbumTransformer", "check_album_mask"]

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def check_album_mask(mask: torch.Tensor | None, batch: int, length: int, device: torch.device) -> torch.Tensor:
    """Validate an album mask (``True`` = real image) and return it as a bool tensor; ``None`` means all real.

    Args:
        mask: ``[B, K]`` mask or ``None``.
        batch: Expected number of albums ``B``.
        length: Expected number of image slots ``K``.
        device: Device of the returned mask.
    """
    if mask is None:
        return torch.ones(batch, length, dtype=torch.bool, device=device)
    if mask.shape != (batch, length):
        raise ValueError(f"album mask must have shape {(batch, length)}, got {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        raise TypeError(f"album mask must be a bool tensor (True = real image), got {mask.dtype}")
    if not bool(mask.any(dim=1).all()):
        empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
        raise ValueError(f"albums {empty} of the batch have no images (their mask is all False)")
    return mask.to(device)


class AlbumEncoderLayer(nn.Module):
    """One transformer encoder layer that can return its attention weights per head.

    Same computation and parameter names as ``nn.TransformerEncoderLayer`` (``self_attn``, ``linear1``,
    ``linear2``, ``norm1``, ``norm2``), so the original checkpoints load by renaming the prefix only.

    Args:
        dim: Token width.
        num_heads: Attention heads.
        ffn_dim: Hidden width of the feed-forward block.
        dropout: Dropout on the attention weights, after attention, inside and after the feed-forward block.
        activation: "relu" (the original's) or "gelu".
        norm_first: Pre-norm instead of the original post-norm.
        layer_norm_eps: LayerNorm epsilon.
    """

    def __init__(
        self,
        dim: int,
        *,
        num_heads: int = 8,
        ffn_dim: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = False,
        layer_norm_eps: float = 1e-5,
    ):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if dim % num_heads:
            raise ValueError(f"token width {dim} is not divisible by num_heads={num_heads}")
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.activation_name = activation
        self.activation = _ACTIVATIONS[activation]
        self.norm_first = norm_first

    def _attend(
        self, x: torch.Tensor, padding: torch.Tensor | None, need_weights: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        out, weights = self.self_attn(
            x, x, x, key_padding_mask=padding, need_weights=need_weights, average_attn_weights=False
        )
        return self.dropout1(out), weights

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(
        self, x: torch.Tensor, padding: torch.Tensor | None = None, *, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run the layer.

        Args:
            x: ``[B, N, dim]`` tokens.
            padding: ``[B, N]`` bool key-padding mask, ``True`` where a token is padding (PyTorch's convention).
            need_weights: Also return the attention weights ``[B, heads, N, N]`` (else ``None``).
        """
        if self.norm_first:
            attended, weights = self._attend(self.norm1(x), padding, need_weights)
            x = x + attended
            x = x + self._feed_forward(self.norm2(x))
        else:
            attended, weights = self._attend(x, padding, need_weights)
            x = self.norm1(x + attended)
            x = self.norm2(x + self._feed_forward(x))
        return x, weights


class AlbumTransformer(nn.Module):
    """CLS token + transformer encoder over image embeddings (the original's ``TAggregate``).

    Args:
        dim: Width of the image embeddings (the backbone's feature width; 2048 for TResNet-M).
        depth: Encoder layers.
        num_heads: Attention heads per layer.
        ffn_dim: Feed-forward hidden width.
        dropout: Dropout inside the encoder layers.
        activation: "relu" or "gelu".
        norm_first: Pre-norm layers instead of post-norm.
        pos_embed: Add a learnable position embedding (order-dependent; off = order-invariant).
        max_images: Longest album the position embedding covers (the original's ``album_clip_length``).
        layer_norm_eps: LayerNorm epsilon.
    """

    def __init__(
        self,
        dim: int,
        *,
        depth: int = 6,
        num_heads: int = 8,
        ffn_dim: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = False,
        pos_embed: bool = False,
        max_images: int = 32,
        layer_norm_eps: float = 1e-5,
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.dim = dim
        self.max_images = max_images
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        if pos_embed:
            self.pos_embed = nn.Parameter(torch.zeros(1, max_images + 1, dim))
        else:
            self.register_parameter("pos_embed", None)
        self.layers = nn.ModuleList(
            AlbumEncoderLayer(
                dim,
                num_heads=num_heads,
                ffn_dim=ffn_dim,
                dropout=dropout,
                activation=activation,
                norm_first=norm_first,
                layer_norm_eps=layer_norm_eps,
            )
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The original's initialisation: truncated normal (std 0.02, cut at 2 std) for the CLS token, the
        position embedding and every Linear weight, zero biases, unit LayerNorms; ``in_proj`` keeps PyTorch's."""
        std = 0.02
        nn.init.trunc_normal_(self.cls_token, std=std, a=-2 * std, b=2 * std)
        if self.pos_embed is not None:
            nn.init.trunc_normal_(self.pos_embed, std=std, a=-2 * std, b=2 * std)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def num_heads(self) -> int:
        return self.layers[0].self_attn.num_heads

    def forward(
        self, tokens: torch.Tensor, mask: torch.Tensor | None = None, *, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Aggregate an album's image embeddings into one album embedding (the CLS output).

        Args:
            tokens: ``[B, K, dim]`` image embeddings; padded slots may hold anything.
            mask: ``[B, K]`` bool, ``True`` for real images (default: all real).
            return_attention: Also return every layer's attention, ``[B, depth, heads, K + 1, K + 1]`` (index 0 is
                the CLS token; padded keys get exactly zero weight).

        Returns:
            ``[B, dim]`` album embeddings, or ``(embeddings, attention)``.
        """
        if tokens.ndim != 3 or tokens.shape[-1] != self.dim:
            raise ValueError(f"expected image embeddings [B, K, {self.dim}], got {tuple(tokens.shape)}")
        b, k, _ = tokens.shape
        mask = check_album_mask(mask, b, k, tokens.device)
        x = torch.cat([self.cls_token.expand(b, -1, -1).to(tokens.dtype), tokens], dim=1)
        if self.pos_embed is not None:
            if k > self.max_images:
                raise ValueError(
                    f"album of {k} image slots is longer than the position embedding ({self.max_images}); "
                    "sample at most max_images images per album or build the model with pos_embed=False"
                )
            x = x + self.pos_embed[:, : k + 1]
        padding = torch.cat([mask.new_zeros(b, 1), ~mask], dim=1)
        if bool(mask.all()):
            padding = None  # lets PyTorch take its unmasked fast path
        attention = []
        for layer in self.layers:
            x, weights = layer(x, padding, need_weights=return_attention)
            if return_attention:
                attention.append(weights)
        out = self.norm(x)[:, 0]
        if return_attention:
            return out, torch.stack(attention, dim=1)
        return out
