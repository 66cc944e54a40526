"""The album transformer: a CLS token attends over the embeddings of an album's images.

Paper: "PETA: Photo Albums Event Recognition using Transformers Attention", Glaser et al., 2021 (arXiv 2109.12499),
section 3 (album representation with a transformer encoder). The original ``TAggregate`` stacks PyTorch's
``nn.TransformerEncoderLayer`` with its defaults (8 heads, feed-forward 2048, dropout 0.1, ReLU, post-norm), adds a
final LayerNorm, a learnable CLS token and a learnable position embedding, and classifies the CLS output. It is the
aggregator STAM and EAT use too: here miil-core's :class:`~miil.core.layers.ClsTransformer` with PETA's settings.

Changed from the original:
    * albums of any size: images are padded and masked out of the attention with a key-padding mask, instead of
      duplicating images up to a fixed length (``mask`` marks the real images);
    * the position embedding is optional and off by default: albums are unordered sets, and without it the output
      does not depend on the order of the images (the released ``peta_32`` checkpoint was trained with it on);
      with it, an album uses the first positions and may not be longer than ``max_images``;
    * the attention of every layer and head can be returned (the original kept the last layer's, head-averaged);
    * ``norm_first=True`` gives the pre-norm variant the paper's figure draws (the code is post-norm).
"""

from __future__ import annotations

from typing import Any

import torch

from miil.core.layers import ClsEncoderLayer, ClsTransformer, check_token_mask

__all__ = ["AlbumEncoderLayer", "AlbumTransformer", "check_album_mask"]


def check_album_mask(mask: torch.Tensor | None, batch: int, length: int, device: torch.device) -> torch.Tensor:
    """Validate an album mask (``True`` = real image) and return it as a bool tensor; ``None`` means all real.

    Args:
        mask: ``[B, K]`` mask or ``None``.
        batch: Expected number of albums ``B``.
        length: Expected number of image slots ``K``.
        device: Device of the returned mask.
    """
    return check_token_mask(mask, batch, length, device, sequence="album", item="image")


class AlbumEncoderLayer(ClsEncoderLayer):
    """One transformer encoder layer that can return its attention weights per head (PETA's names for the width).

    PyTorch's ``nn.TransformerEncoderLayer`` (same parameter names: ``self_attn``, ``linear1``, ``linear2``,
    ``norm1``, ``norm2``), so the original checkpoints load by renaming the prefix only; ``forward_with_attention``
    returns the attention too.

    Args:
        dim: Token width.
        ffn_dim: Hidden width of the feed-forward block.
        kwargs: The other :class:`~miil.core.layers.ClsEncoderLayer` options (``num_heads=8``, ``dropout=0.1``,
            ``activation="relu"``, ``norm_first=False``, ``layer_norm_eps=1e-5``: the original's).
    """

    def __init__(self, dim: int, *, ffn_dim: int = 2048, **kwargs: Any):
        super().__init__(dim, mlp_dim=ffn_dim, **kwargs)


class AlbumTransformer(ClsTransformer):
    """CLS token + transformer encoder over image embeddings (the original's ``TAggregate``).

    ``forward(tokens, mask=None, *, return_attention=False)``: ``[B, K, dim]`` image embeddings and a ``[B, K]``
    mask (``True`` = real image) in, ``[B, dim]`` album embeddings out (see :class:`~miil.core.layers.ClsTransformer`).

    Args:
        dim: Width of the image embeddings (the backbone's feature width; 2048 for TResNet-M).
        ffn_dim: Feed-forward hidden width.
        pos_embed: Add a learnable position embedding (order-dependent; off = order-invariant).
        max_images: Longest album the position embedding covers (the original's ``album_clip_length``).
        kwargs: The other :class:`~miil.core.layers.ClsTransformer` options, whose defaults are the original's:
            ``depth=6``, ``num_heads=8``, ``dropout=0.1``, ``activation="relu"``, ``norm_first=False`` (post-norm; the
            paper's figure draws pre-norm), ``layer_norm_eps=1e-5``.
    """

    mask_words = ("album", "image")

    def __init__(self, dim: int, *, ffn_dim: int = 2048, pos_embed: bool = False, max_images: int = 32, **kwargs: Any):
        # Layers built one by one (not as copies of one), as this package always did: seeded runs stay as they were.
        super().__init__(
            dim,
            mlp_dim=ffn_dim,
            pos_embed=pos_embed,
            num_tokens=max_images,
            pos_embed_mode="crop",
            clone_layers=False,
            **kwargs,
        )

    @property
    def dim(self) -> int:
        """Width of the image embeddings."""
        return self.embed_dim

    @property
    def max_images(self) -> int:
        """Longest album the position embedding covers."""
        return self.num_tokens
