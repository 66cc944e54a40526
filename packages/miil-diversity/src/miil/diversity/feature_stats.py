"""Feature diversity statistics, accumulated in one streaming pass: effective rank and mean feature correlation.

Paper: "Diverse ImageNet Models Transfer Better" (arXiv 2204.09134, v1): transferability grows with the diversity of
the *features* a model learns, jointly with ImageNet accuracy. The paper's exact feature measure could not be
retrieved; we provide two standard ones, both functions of the feature covariance, so that a single pass over a
dataset keeps only ``count``, ``sum x`` and ``sum x x^T`` (``D + D^2`` numbers per layer, in float64):

* effective rank (Roy & Vetterli, EUSIPCO 2007): ``exp(H(p))`` with ``p_i = s_i / sum_j s_j`` and ``s`` the singular
  values of the centered feature matrix (square roots of the scatter matrix's eigenvalues). It is between 1 (all
  samples on one line) and ``D`` (isotropic features); ``normalized_effective_rank`` divides by ``D``.
* mean feature correlation: the mean ``|corr(f_i, f_j)|`` over pairs of distinct feature channels; channels that
  never vary (dead units) have no correlation and are left out. Lower means more diverse.
"""

from __future__ import annotations

import math

import torch

from miil.core import distributed as du

__all__ = [
    "FeatureMoments",
    "effective_rank",
    "effective_rank_from_covariance",
    "mean_feature_correlation",
    "pool_features",
]


def pool_features(features: torch.Tensor, *, channels: int | None = None) -> torch.Tensor:
    """One vector per sample: ``[B, C, H, W]`` is averaged over space, ``[B, N, C]`` tokens over ``N``.

    Args:
        features: A layer output.
        channels: The layer's channel count, to recognise channels-last ``[B, H, W, C]`` maps.
    """
    if features.ndim == 2:
        return features
    if features.ndim == 4:
        if channels is not None and features.shape[-1] == channels and features.shape[1] != channels:
            return features.mean((1, 2))
        return features.mean((2, 3))
    if features.ndim == 3:
        return features.mean(1)
    if features.ndim == 5:
        return features.mean((2, 3, 4))
    raise ValueError(f"cannot pool features of shape {tuple(features.shape)} to one vector per sample")


def effective_rank(spectrum: torch.Tensor) -> float:
    """``exp`` of the entropy of the normalized spectrum (Roy & Vetterli 2007).

    Args:
        spectrum: Non-negative singular values (any order). Zeros contribute nothing.
    """
    s = torch.as_tensor(spectrum).double().flatten()
    if s.numel() == 0 or (s < 0).any():
        raise ValueError(f"effective rank needs a non-empty, non-negative spectrum, got {s.tolist()[:8]}")
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s[s > 0] / total
    return float(torch.exp(-(p * p.log()).sum()))


def effective_rank_from_covariance(cov: torch.Tensor) -> float:
    """Effective rank of the centered feature matrix whose covariance (or scatter) matrix is ``cov``.

    Args:
        cov: ``[D, D]`` symmetric positive semi-definite matrix.
    """
    eig = torch.linalg.eigvalsh(cov.double()).clamp_min(0)
    return effective_rank(eig.sqrt())


def mean_feature_correlation(cov: torch.Tensor, *, eps: float = 1e-12) -> float:
    """Mean ``|corr|`` over pairs of distinct channels that vary (``var > eps``); NaN with fewer than 2 such.

    Args:
        cov: ``[D, D]`` feature covariance.
        eps: Variance below which a channel counts as dead.
    """
    cov = cov.double()
    var = cov.diagonal()
    alive = var > eps
    n = int(alive.sum())
    if n < 2:
        return math.nan
    sub = cov[alive][:, alive]
    std = sub.diagonal().sqrt()
    corr = (sub / (std[:, None] * std[None, :])).clamp(-1, 1).abs()
    return float((corr.sum() - corr.diagonal().sum()) / (n * (n - 1)))


class FeatureMoments:
    """Running ``count``, ``sum x`` and ``sum x x^T`` of ``[B, D]`` feature batches (float64), DDP-reducible.

    Args:
        dim: Feature width ``D``; taken from the first batch when ``None``.
    """

    def __init__(self, dim: int | None = None):
        self.dim = dim
        self.count = 0
        self.sum: torch.Tensor | None = None
        self.scatter: torch.Tensor | None = None

    def reset(self) -> None:
        self.count, self.sum, self.scatter = 0, None, None

    def update(self, features: torch.Tensor) -> None:
        """Add a batch.

        Args:
            features: ``[B, D]`` features (any device; accumulated on that device).
        """
        if features.ndim != 2:
            raise ValueError(f"FeatureMoments.update expects [batch, dim] features, got {tuple(features.shape)}")
        x = features.detach().double()
        if self.dim is None:
            self.dim = x.shape[1]
        if x.shape[1] != self.dim:
            raise ValueError(f"feature width changed from {self.dim} to {x.shape[1]}")
        if self.sum is None:
            self.sum = x.new_zeros(self.dim)
            self.scatter = x.new_zeros(self.dim, self.dim)
        self.sum += x.sum(0)
        self.scatter.addmm_(x.T, x)
        self.count += x.shape[0]

    def all_reduce(self) -> FeatureMoments:
        """Sum the moments over all DDP ranks (in place; a no-op in one process). Every rank must call it."""
        if du.get_world_size() == 1:
            return self
        if self.dim is None:
            raise RuntimeError("FeatureMoments.all_reduce needs the feature width: give dim= or update() first")
        if self.sum is None:
            self.sum = torch.zeros(self.dim, dtype=torch.float64)
            self.scatter = torch.zeros(self.dim, self.dim, dtype=torch.float64)
        flat = torch.cat(
            [torch.tensor([float(self.count)], dtype=torch.float64), self.sum.cpu(), self.scatter.cpu().flatten()]
        )
        flat = du.all_reduce_sum(flat).cpu()
        self.count = int(round(flat[0].item()))
        self.sum = flat[1 : 1 + self.dim].clone()
        self.scatter = flat[1 + self.dim :].reshape(self.dim, self.dim).clone()
        return self

    def mean(self) -> torch.Tensor:
        if self.count == 0:
            raise RuntimeError("no features were accumulated")
        return self.sum / self.count

    def covariance(self) -> torch.Tensor:
        """Unbiased ``[D, D]`` covariance (needs at least 2 samples)."""
        if self.count < 2:
            raise RuntimeError(f"a covariance needs at least 2 samples, got {self.count}")
        mu = self.mean()
        return (self.scatter - self.count * torch.outer(mu, mu)) / (self.count - 1)
