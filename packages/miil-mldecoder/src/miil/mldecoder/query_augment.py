"""Query augmentations for zero-shot ML-Decoder training.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933), zero-shot
section, proposes two augmentations of the word queries during zero-shot training to improve generalisation to unseen
classes; the reference repository does not contain them (its issue #38 refers to the paper). Implemented here from
our reading of the paper:

* additive noise: Gaussian noise is added to the word vectors of every training step;
* random queries: extra queries with random values are appended to the seen classes, with a fixed target for every
  image (``random_query_target``).

The noise and the random queries are scaled to the root-mean-square value of the word vectors, so the strength does
not depend on how the embedding was normalised. Both are off at evaluation.
"""

from __future__ import annotations

import torch

__all__ = ["QueryAugmentation"]


class QueryAugmentation:
    """Augments a batch's word-vector queries and extends its targets to match.

    Args:
        noise_std: Standard deviation of the additive Gaussian noise, relative to the word vectors' RMS value;
            0 disables it.
        num_random_queries: Number of random queries appended per step; 0 disables them.
        random_query_target: Target of the random queries for every image (1 positive, 0 negative).
    """

    def __init__(self, *, noise_std: float = 0.0, num_random_queries: int = 0, random_query_target: float = 1.0):
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
        return self.noise_std > 0 or self.num_random_queries > 0

    def __call__(self, word_vectors: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment.

        Args:
            word_vectors: ``[N, word_dim]`` word vectors of the training classes.
            targets: ``[B, N]`` multi-label targets.

        Returns:
            ``([N + R, word_dim] queries, [B, N + R] targets)`` with ``R = num_random_queries``.
        """
        if targets.ndim != 2 or targets.shape[1] != word_vectors.shape[0]:
            raise ValueError(
                f"targets {tuple(targets.shape)} do not match {word_vectors.shape[0]} word vectors ([B, N] expected)"
            )
        scale = word_vectors.detach().float().pow(2).mean().sqrt().clamp(min=1e-12).to(word_vectors.dtype)
        wv = word_vectors
        if self.noise_std > 0:
            wv = wv + torch.randn_like(wv) * (self.noise_std * scale)
        if self.num_random_queries > 0:
            extra = torch.randn(self.num_random_queries, wv.shape[1], device=wv.device, dtype=wv.dtype) * scale
            wv = torch.cat([wv, extra])
            fill = targets.new_full((targets.shape[0], self.num_random_queries), self.random_query_target)
            targets = torch.cat([targets, fill], dim=1)
        return wv, targets

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(noise_std={self.noise_std}, num_random_queries={self.num_random_queries}, "
            f"random_query_target={self.random_query_target})"
        )
