"""Bilinear functions of the architecture variables: the expected latency ``t_fixed + p^T alpha + alpha^T Q beta``.

Paper: HardCoRe-NAS (arXiv 2102.11646), section 3.3, equation for the expected latency. With ``alpha[s, j]`` the
distribution over the options of block ``j`` of stage ``s`` and ``beta[s]`` the distribution over the stage's depths,
block ``j`` runs exactly when the depth exceeds ``j``. Blocks present at every depth (``j < min depth``) enter
linearly through ``p``; the others through ``Q[(s, j, c), (s, b)] = t[s, j, c]`` for every depth ``b`` that includes
block ``j``. For one-hot ``alpha, beta`` this is exactly the sum of the table entries of the chosen blocks.

The form is linear in ``alpha`` for fixed ``beta`` and in ``beta`` for fixed ``alpha``, which is what the block
coordinate Frank-Wolfe search exploits. It is generic: IQNAS (miil-iqnas) builds its accuracy estimator
``base + p_a^T alpha + p_b^T beta + alpha^T Q beta`` with the same structure and an extra linear ``beta`` term.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .search_space import SearchSpace

__all__ = ["BilinearForm", "bilinear_form", "latency_form"]


@dataclass(frozen=True)
class BilinearForm:
    """``f(alpha, beta) = constant + p . alpha + r . beta + alpha^T Q beta`` over flattened variables.

    Args:
        constant: The constant term (``t_fixed`` for latency).
        p: ``[n_alpha]`` linear coefficients of ``alpha``.
        r: ``[n_beta]`` linear coefficients of ``beta`` (zero for latency).
        Q: ``[n_alpha, n_beta]`` bilinear coefficients.
        alpha_shape: Shape of ``alpha`` (stages, max depth, options).
        beta_shape: Shape of ``beta`` (stages, depths).
    """

    constant: float
    p: np.ndarray
    r: np.ndarray
    Q: np.ndarray
    alpha_shape: tuple[int, ...]
    beta_shape: tuple[int, ...]

    def _flat(self, alpha, beta) -> tuple[np.ndarray, np.ndarray]:
        a = np.asarray(alpha, dtype=np.float64).reshape(-1)
        b = np.asarray(beta, dtype=np.float64).reshape(-1)
        if a.size != self.p.size or b.size != self.r.size:
            raise ValueError(f"alpha/beta sizes {a.size}/{b.size} do not match the form's {self.p.size}/{self.r.size}")
        return a, b

    def __call__(self, alpha: np.ndarray, beta: np.ndarray) -> float:
        a, b = self._flat(alpha, beta)
        return float(self.constant + self.p @ a + self.r @ b + a @ self.Q @ b)

    def alpha_coefficients(self, beta: np.ndarray) -> tuple[float, np.ndarray]:
        """``(c0, c)`` with ``f = c0 + c . alpha`` for this fixed ``beta`` (``c`` shaped like ``alpha``)."""
        b = np.asarray(beta, dtype=np.float64).reshape(-1)
        return float(self.constant + self.r @ b), (self.p + self.Q @ b).reshape(self.alpha_shape)

    def beta_coefficients(self, alpha: np.ndarray) -> tuple[float, np.ndarray]:
        """``(c0, c)`` with ``f = c0 + c . beta`` for this fixed ``alpha`` (``c`` shaped like ``beta``)."""
        a = np.asarray(alpha, dtype=np.float64).reshape(-1)
        return float(self.constant + self.p @ a), (self.r + self.Q.T @ a).reshape(self.beta_shape)

    def torch_value(self, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """Differentiable value for torch tensors (used by the soft-penalty baseline)."""
        p = torch.as_tensor(self.p, dtype=alpha.dtype, device=alpha.device)
        r = torch.as_tensor(self.r, dtype=beta.dtype, device=beta.device)
        q = torch.as_tensor(self.Q, dtype=alpha.dtype, device=alpha.device)
        a, b = alpha.reshape(-1), beta.reshape(-1)
        return self.constant + p @ a + r @ b + a @ q @ b


def bilinear_form(
    space: SearchSpace,
    block_values: np.ndarray,
    *,
    constant: float = 0.0,
    depth_values: np.ndarray | None = None,
) -> BilinearForm:
    """The bilinear form that adds the values of the present blocks (and of the chosen depths).

    Args:
        space: The search space.
        block_values: ``[stages, max depth, options]``: the value of option ``c`` at block ``j`` of stage ``s``
            (latency in ms, or an accuracy contribution), counted when the block is present.
        constant: The constant term.
        depth_values: Optional ``[stages, depths]`` values counted for the chosen depth (the ``r`` term).
    """
    values = np.asarray(block_values, dtype=np.float64)
    if values.shape != space.alpha_shape:
        raise ValueError(f"block_values has shape {values.shape}, the space needs {space.alpha_shape}")
    n_stages, max_depth, n_opt = space.alpha_shape
    n_depths = len(space.depths)
    p = np.zeros(space.alpha_shape)
    q = np.zeros((*space.alpha_shape, n_stages, n_depths))
    for s in range(n_stages):
        for j in range(max_depth):
            if j < space.min_depth:
                p[s, j] = values[s, j]
                continue
            for b, depth in enumerate(space.depths):
                if j < depth:
                    q[s, j, :, s, b] = values[s, j]
    r = np.zeros(space.beta_shape) if depth_values is None else np.asarray(depth_values, dtype=np.float64)
    if r.shape != space.beta_shape:
        raise ValueError(f"depth_values has shape {r.shape}, the space needs {space.beta_shape}")
    n_alpha = n_stages * max_depth * n_opt
    return BilinearForm(
        float(constant),
        p.reshape(-1),
        r.reshape(-1),
        q.reshape(n_alpha, n_stages * n_depths),
        space.alpha_shape,
        space.beta_shape,
    )


def latency_form(table) -> BilinearForm:
    """The expected latency (ms per sample) under a :class:`~miil.hardcore.latency_table.LatencyTable`."""
    return bilinear_form(table.space, table.costs(), constant=table.t_fixed)
