"""Least-squares accuracy predictors fitted on random sub-networks, and ranking quality against measured accuracy.

Paper: IQNAS / BINAS (arXiv 2110.12399), section 4 (comparison of accuracy predictors; the original's
``fit_predictors.py``). The alternatives to the measured estimator are fitted on ``(architecture, one-shot
accuracy)`` pairs of random sub-networks:

- ``"linear"``: ``c + w^T v`` over the 0/1 encoding ``v = [x, beta]`` (the measured estimator's family);
- ``"bilinear"``: plus every product ``x_i beta_k`` (the ``alpha^T Q beta`` family with a full ``Q``);
- ``"quadratic"``: plus every product ``v_i v_j`` of variables that can be 1 together.

Fitting is the original's closed form: centred least squares through a truncated SVD pseudo-inverse (singular values
below ``min_singular`` dropped, the original's ``1/s > 10`` rule). Ranking quality is Kendall's tau, Spearman's rho,
Pearson's r and the MSE, as the paper reports them for the estimator (tau 0.84, rho 0.97 on 500 networks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from miil.hardcore import Architecture, SearchSpace

from .encoding import encode_many, num_variables

__all__ = ["KINDS", "QuadraticPredictor", "as_predictor", "fit_predictor", "pair_index", "ranking_quality"]

KINDS = ("linear", "bilinear", "quadratic")


def pair_index(space: SearchSpace, kind: str) -> np.ndarray:
    """``[m, 2]`` variable pairs ``(i < j)`` whose product is a feature of ``kind``."""
    n_x, n_b = num_variables(space)
    n = n_x + n_b
    if kind == "linear":
        return np.zeros((0, 2), dtype=np.int64)
    if kind == "bilinear":
        i, k = np.meshgrid(np.arange(n_x), np.arange(n_x, n), indexing="ij")
        return np.stack([i.reshape(-1), k.reshape(-1)], axis=1)
    if kind != "quadratic":
        raise ValueError(f"predictor kind must be one of {KINDS}, got {kind!r}")
    # x variables of one block (or beta of one stage) are one-hot: their products are always 0.
    group = np.concatenate(
        [np.arange(n_x) // space.num_options, n_x // space.num_options + np.arange(n_b) // len(space.depths)]
    )
    i, j = np.triu_indices(n, k=1)
    keep = group[i] != group[j]
    return np.stack([i[keep], j[keep]], axis=1)


@dataclass(frozen=True)
class QuadraticPredictor:
    """``f(v) = constant + linear^T v + sum_m weights[m] v[pairs[m, 0]] v[pairs[m, 1]]`` over ``v = [x, beta]``.

    Args:
        space: The search space.
        kind: ``"linear"``, ``"bilinear"`` or ``"quadratic"``.
        constant: Intercept.
        linear: ``[n]`` linear weights.
        pairs: ``[m, 2]`` variable pairs of the product terms.
        weights: ``[m]`` weights of the product terms.
    """

    space: SearchSpace
    kind: str
    constant: float
    linear: np.ndarray
    pairs: np.ndarray
    weights: np.ndarray

    def features(self, v: np.ndarray) -> np.ndarray:
        v = np.atleast_2d(v)
        return np.concatenate([v, v[:, self.pairs[:, 0]] * v[:, self.pairs[:, 1]]], axis=1)

    def __call__(self, arch: Architecture) -> float:
        return float(self.predict([arch])[0])

    def predict(self, archs: list[Architecture]) -> np.ndarray:
        return self.predict_encoded(encode_many(self.space, archs))

    def predict_encoded(self, v: np.ndarray) -> np.ndarray:
        return self.constant + self.features(v) @ np.concatenate([self.linear, self.weights])

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "space": self.space.to_dict(),
            "constant": self.constant,
            "linear": self.linear.tolist(),
            "pairs": self.pairs.tolist(),
            "weights": self.weights.tolist(),
        }


def fit_predictor(
    space: SearchSpace,
    archs: list[Architecture],
    accuracies: np.ndarray,
    *,
    kind: str = "bilinear",
    min_singular: float = 0.1,
) -> QuadraticPredictor:
    """Fit a predictor of ``kind`` to measured accuracies by centred, SVD-truncated least squares.

    Args:
        space: The search space.
        archs: The training architectures.
        accuracies: Their measured (one-shot) accuracies.
        kind: ``"linear"``, ``"bilinear"`` or ``"quadratic"``.
        min_singular: Singular values of the centred design matrix below this are dropped.
    """
    y = np.asarray(accuracies, dtype=np.float64)
    if len(archs) != len(y) or len(archs) < 2:
        raise ValueError(f"need at least 2 architectures with one accuracy each, got {len(archs)} and {len(y)}")
    pairs = pair_index(space, kind)
    n = sum(num_variables(space))
    empty = QuadraticPredictor(space, kind, 0.0, np.zeros(n), pairs, np.zeros(len(pairs)))
    features = empty.features(encode_many(space, archs))
    mean_x, mean_y = features.mean(axis=0), float(y.mean())
    u, s, vt = np.linalg.svd(features - mean_x, full_matrices=False)
    keep = s > min_singular
    coef = vt[keep].T @ ((u[:, keep].T @ (y - mean_y)) / s[keep])
    return QuadraticPredictor(space, kind, mean_y - float(mean_x @ coef), coef[:n], pairs, coef[n:])


def ranking_quality(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """Kendall's tau, Spearman's rho, Pearson's r and the mean squared error of predictions vs measurements."""
    p, m = np.asarray(predicted, dtype=np.float64), np.asarray(measured, dtype=np.float64)
    if p.shape != m.shape or p.size < 3:
        raise ValueError(f"need at least 3 paired values, got shapes {p.shape} and {m.shape}")
    return {
        "kendall_tau": float(stats.kendalltau(p, m)[0]),
        "spearman": float(stats.spearmanr(p, m)[0]),
        "pearson": float(stats.pearsonr(p, m)[0]),
        "mse": float(np.mean((p - m) ** 2)),
    }


def as_predictor(objective: Any) -> QuadraticPredictor:
    """Any accuracy model as a :class:`QuadraticPredictor`: a fitted predictor, a :class:`~miil.iqnas.BlockAdditive`
    or an :class:`~miil.iqnas.AccuracyEstimator` (anything with an ``additive`` attribute)."""
    if isinstance(objective, QuadraticPredictor):
        return objective
    form = getattr(objective, "additive", objective)
    if not hasattr(form, "coefficients"):
        raise TypeError(f"cannot use {type(objective).__name__} as an accuracy model")
    return QuadraticPredictor(
        form.space, "linear", form.constant, form.coefficients, np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    )
