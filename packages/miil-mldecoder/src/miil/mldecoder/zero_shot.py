"""Zero-shot ML-Decoder: word-vector queries and a shared classifier, so unseen classes need no new weights.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933), zero-shot
section.
Every class is one query: its word embedding (fastText, 300-d, in the paper's NUS-WIDE experiments) goes through a
shared linear projection and a ReLU; after the decoder layer a shared ``D -> 1`` classifier scores each query. Since
no weight depends on the class list, replacing the word vectors (seen classes in training, unseen or all classes at
evaluation) changes the classes the head predicts.

Changed from the reference code: the word vectors are a registered, non-persistent buffer (the reference assigns a
plain tensor attribute from outside the module and moves it with ``.cuda()``), so they follow ``.to(device)``, never
enter checkpoints, and can also be passed per call (``forward(x, word_vectors=...)``), which the query augmentations
use during training.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .ml_decoder import MLDecoderBase

__all__ = ["ZeroShotMLDecoder"]


class ZeroShotMLDecoder(MLDecoderBase):
    """ML-Decoder head whose queries are projected word vectors, one per class.

    Args:
        in_features: Channel width ``C`` of the backbone features.
        word_dim: Width of the word vectors. When it equals ``embed_dim`` the projection is the identity (then only
            the ReLU is applied), as in the reference.
        word_vectors: Optional initial ``[N, word_dim]`` word vectors (the classes to predict).
        embed_dim: Decoder width ``D``.
        num_heads: Attention heads.
        ffn_dim: Feed-forward hidden width.
        dropout: Decoder dropout.
        input_format: Layout of 4-D inputs, "NCHW" or "NHWC".
        layer_norm_eps: Epsilon of the decoder's layer norms.
    """

    def __init__(
        self,
        *,
        in_features: int,
        word_dim: int = 300,
        word_vectors: torch.Tensor | None = None,
        embed_dim: int = 768,
        num_heads: int = 8,
        ffn_dim: int = 2048,
        dropout: float = 0.1,
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
        self.word_dim = word_dim
        self.word_proj = nn.Linear(word_dim, embed_dim) if word_dim != embed_dim else nn.Identity()
        self.weight = nn.Parameter(torch.empty(embed_dim, 1))
        self.bias = nn.Parameter(torch.zeros(1))
        nn.init.xavier_normal_(self.weight)
        self.register_buffer("word_vectors", torch.empty(0, word_dim), persistent=False)
        if word_vectors is not None:
            self.set_word_vectors(word_vectors)

    @property
    def num_classes(self) -> int:
        """Number of classes currently queried (rows of the word-vector buffer)."""
        return self.word_vectors.shape[0]

    def _check_word_vectors(self, word_vectors: torch.Tensor) -> torch.Tensor:
        wv = torch.as_tensor(word_vectors)
        if wv.ndim != 2 or wv.shape[1] != self.word_dim or wv.shape[0] < 1:
            raise ValueError(
                f"word vectors must be [num_classes, {self.word_dim}] with at least one class, got {tuple(wv.shape)}"
            )
        if not torch.isfinite(wv).all():
            raise ValueError("word vectors contain NaN or infinite values")
        return wv

    def set_word_vectors(self, word_vectors: torch.Tensor) -> None:
        """Replace the class queries (e.g. seen classes for training, unseen or all classes for evaluation).

        Args:
            word_vectors: ``[N, word_dim]`` word vectors, one row per class.
        """
        wv = self._check_word_vectors(word_vectors)
        self.word_vectors = wv.detach().to(device=self.weight.device, dtype=torch.float32).clone()

    def queries(self, word_vectors: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder queries ``relu(word_proj(word_vectors))``, ``[N, D]``."""
        wv = self.word_vectors if word_vectors is None else self._check_word_vectors(word_vectors)
        if wv.shape[0] == 0:
            raise RuntimeError("ZeroShotMLDecoder has no word vectors; call set_word_vectors() or pass word_vectors")
        return F.relu(self.word_proj(wv.to(self.weight.device)))

    def forward(self, x: torch.Tensor, word_vectors: torch.Tensor | None = None) -> torch.Tensor:
        """One logit per queried class.

        Args:
            x: Backbone features (``NCHW``/``NHWC`` maps or ``[B, L, C]`` tokens).
            word_vectors: ``[N, word_dim]`` classes to score in this call; default: the buffer.

        Returns:
            ``[B, N]`` logits.
        """
        h = self.layer(self.queries(word_vectors), self.memory(x))
        return (h @ self.weight).squeeze(-1) + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, word_dim={self.word_dim}, embed_dim={self.embed_dim}"
