"""Query augmentations for zero-shot ML-Decoder training.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933), zero-shot
learning with word queries. The paper credits "novel query augmentations" with part of its NUS-WIDE zero-shot
result (abstract); the reference repository ships none of them (its issue #38 asks for them), and the text that
specifies them could not be read from the material available to this build (see the package README). What is
implemented is our reading of the two augmentations, applied to the word vectors of the seen classes in every
training step and never at evaluation:

* additive noise: i.i.d. Gaussian noise is added to every word vector, a fresh draw per step;
* random queries: extra queries with i.i.d. Gaussian values are appended to the seen classes, with the same target
  (``random_query_target``, positive by default) for every image.

Strengths are relative to the root-mean-square value ``r`` of the word vectors, so they do not depend on how the
embedding was normalised: the noise has standard deviation ``noise_std * r`` and the random queries ``r``, both with
mean 0. Both are off by default (no published strengths).
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["QueryAugmentation"]


class QueryAugmentation(nn.Module):
    """Augments a batch's word-vector queries in training mode and extends its targets to match.

    In evaluation mode (``.eval()``), or with both augmentations off, it returns its inputs unchanged.

    Args:
        noise_std: Standard deviation of the additive Gaussian noise, relative to the word vectors' RMS value;
            0 disables it.
        num_random_queries: Number of random queries appended per step; 0 disables them.
        random_query_target: Target of the random queries for every image (1 positive, 0 negative).
    """

    def __init__(self, *, noise_std: float = 0.0, num_random_queries: int = 0, random_query_target: float = 1.0):
        super().__init__()
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        if num_random_queries < 0:
            raise ValueError(f"num_random_queries must be >= 0, got {num_random_queries}")
        if random_query_target not in (0.0, 1.0):
            raise ValueError(f"random_query_target must be 0 or 1, got {random_query_target}")
        self.noise_std = float(noise_std)
        self.num_random_queries = int(num_random_queries)
        self.random_query_target = float(random_query_target)

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is configured (it still only acts in training mode)."""
        return self.noise_std > 0 or self.num_random_queries > 0

    def forward(self, word_vectors: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment (training mode) or pass through (evaluation mode).

        Args:
            word_vectors: ``[N, word_dim]`` word vectors of the training classes.
            targets: ``[B, N]`` multi-label targets.

        Returns:
            ``([N + R, word_dim] queries, [B, N + R] targets)`` with ``R = num_random_queries`` in training mode;
            the inputs themselves otherwise.
        """
        if targets.ndim != 2 or targets.shape[1] != word_vectors.shape[0]:
            raise ValueError(
                f"targets {tuple(targets.shape)} do not match {word_vectors.shape[0]} word vectors ([B, N] expected)"
            )
        if not self.training or not self.enabled:
            return word_vectors, targets
        rms = word_vectors.detach().float().pow(2).mean().sqrt().clamp(min=1e-12).to(word_vectors.dtype)
        wv = word_vectors
        if self.noise_std > 0:
            wv = wv + torch.randn_like(wv) * (self.noise_std * rms)
        if self.num_random_queries > 0:
            extra = torch.randn(self.num_random_queries, wv.shape[1], device=wv.device, dtype=wv.dtype) * rms
            wv = torch.cat([wv, extra])
            fill = targets.new_full((targets.shape[0], self.num_random_queries), self.random_query_target)
            targets = torch.cat([targets, fill], dim=1)
        return wv, targets

    def extra_repr(self) -> str:
        return (
            f"noise_std={self.noise_std}, num_random_queries={self.num_random_queries}, "
            f"random_query_target={self.random_query_target}"
        )
