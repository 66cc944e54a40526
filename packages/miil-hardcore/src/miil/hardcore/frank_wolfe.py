"""Block-coordinate stochastic Frank-Wolfe under a hard bilinear constraint, sparsification and safe rounding.

Paper: HardCoRe-NAS (arXiv 2102.11646), section 3.4 (algorithm 1) and section 3.5. The variables are ``alpha``
(a simplex per block) and ``beta`` (a simplex per stage); the constraint ``f(alpha, beta) <= T`` is bilinear, hence
linear in one block of variables when the other is fixed. Each step picks ``alpha`` or ``beta`` (probability 1/2),
updates a momentum of its stochastic gradient, solves the linear minimisation oracle (an LP: minimise ``g . s`` over
the product of simplices intersected with the linear constraint, solved by HiGHS through ``scipy.optimize.linprog``),
and moves ``x <- x + gamma (s - x)``. ``x`` and ``s`` both satisfy the constraint, which is linear in the moving
block, so every iterate is feasible. The search starts from a feasible point.

Afterwards :meth:`BlockFrankWolfe.sparsify` repeats the oracle with cost ``-x`` and a full step until neither block
changes: each block then sits on a vertex of its polytope (every simplex one-hot except at most one with two
non-zeros). :meth:`BlockFrankWolfe.discretize` rounds that point simplex by simplex, never increasing ``f`` beyond
``T``: a simplex takes its most probable option if the constraint still holds, otherwise the cheapest option of its
support, which cannot raise ``f`` because ``f`` is linear in that simplex. The final architecture therefore meets the
target exactly under the table (a hard constraint, not a penalty).

Departures from the original: HiGHS (scipy) instead of cvxopt; the balanced start is the point on the segment from
the uniform distribution to the cheapest network that is closest to uniform while feasible (the original ran 100
QPs); round-off in the LP solution is repaired by pulling ``s`` back toward the feasible ``x``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_matrix

from .bilinear import BilinearForm

__all__ = ["BlockFrankWolfe", "InfeasibleConstraintError", "fractional_simplices"]


class InfeasibleConstraintError(ValueError):
    """No architecture of the space meets the target (the cheapest one is above it)."""


def fractional_simplices(x: np.ndarray, *, tol: float = 1e-9) -> list[tuple[int, ...]]:
    """Indices (all but the last axis) of the simplices of ``x`` that are not one-hot."""
    x = np.asarray(x)
    flat = x.reshape(-1, x.shape[-1])
    out = []
    for i, row in enumerate(flat):
        if np.sum(row > tol) > 1:
            out.append(np.unravel_index(i, x.shape[:-1]))
    return [tuple(int(v) for v in idx) for idx in out]


def _simplex_matrix(shape: tuple[int, ...]) -> csr_matrix:
    n_simplex, width = int(np.prod(shape[:-1])), shape[-1]
    rows = np.repeat(np.arange(n_simplex), width)
    cols = np.arange(n_simplex * width)
    return csr_matrix((np.ones(n_simplex * width), (rows, cols)), shape=(n_simplex, n_simplex * width))


def _project_simplices(x: np.ndarray) -> np.ndarray:
    """Clip tiny negative round-off and renormalise every simplex."""
    x = np.clip(x, 0.0, None)
    return x / x.sum(axis=-1, keepdims=True)


@dataclass
class _State:
    alpha: np.ndarray
    beta: np.ndarray


class BlockFrankWolfe:
    """The constrained optimiser over ``(alpha, beta)``.

    Args:
        form: The constraint function (the expected latency), a :class:`~miil.hardcore.bilinear.BilinearForm`.
        target: The bound ``T`` (same unit as ``form``).
        momentum: Weight of the previous gradient estimate (the paper: 0.9).
        gamma: Step size (the paper: 0.002 for 10,000 steps).
        gamma_schedule: ``"fixed"`` or ``"decay"`` (``gamma * 4 / (k + 4)`` at step ``k``).
        seed: Seed of the alpha/beta block choice.
    """

    def __init__(
        self,
        form: BilinearForm,
        target: float,
        *,
        momentum: float = 0.9,
        gamma: float = 0.002,
        gamma_schedule: str = "fixed",
        seed: int = 0,
    ):
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        if gamma_schedule not in ("fixed", "decay"):
            raise ValueError(f"gamma_schedule must be 'fixed' or 'decay', got {gamma_schedule!r}")
        self.form = form
        self.target = float(target)
        self.momentum = momentum
        self.gamma = gamma
        self.gamma_schedule = gamma_schedule
        self.rng = np.random.default_rng(seed)
        self.k = 0
        self._buf: dict[str, np.ndarray | None] = {"alpha": None, "beta": None}
        self._eq = {"alpha": _simplex_matrix(form.alpha_shape), "beta": _simplex_matrix(form.beta_shape)}
        self.state = _State(*self.feasible_start())

    # ------------------------------------------------------------------ values
    @property
    def alpha(self) -> np.ndarray:
        return self.state.alpha

    @property
    def beta(self) -> np.ndarray:
        return self.state.beta

    def value(self, alpha: np.ndarray | None = None, beta: np.ndarray | None = None) -> float:
        return self.form(self.alpha if alpha is None else alpha, self.beta if beta is None else beta)

    # ------------------------------------------------------------------ start
    def _cheapest(self) -> tuple[np.ndarray, np.ndarray]:
        """The vertex of minimal ``f``: cheapest option per block (given any depth) and the cheapest depth."""
        uniform_beta = np.full(self.form.beta_shape, 1.0 / self.form.beta_shape[-1])
        _, ca = self.form.alpha_coefficients(uniform_beta)
        alpha = np.zeros(self.form.alpha_shape)
        np.put_along_axis(alpha, ca.argmin(axis=-1)[..., None], 1.0, axis=-1)
        _, cb = self.form.beta_coefficients(alpha)
        beta = np.zeros(self.form.beta_shape)
        np.put_along_axis(beta, cb.argmin(axis=-1)[..., None], 1.0, axis=-1)
        return alpha, beta

    def feasible_start(self) -> tuple[np.ndarray, np.ndarray]:
        """The feasible point closest to uniform on the segment from uniform to the cheapest network.

        Raises:
            InfeasibleConstraintError: if even the cheapest network exceeds the target.
        """
        a_min, b_min = self._cheapest()
        lowest = self.form(a_min, b_min)
        if lowest > self.target:
            raise InfeasibleConstraintError(
                f"the target {self.target:.4g} is below the cheapest architecture of the space ({lowest:.4g}); "
                "raise the target or measure the table on the intended device"
            )
        a_uni = np.full(self.form.alpha_shape, 1.0 / self.form.alpha_shape[-1])
        b_uni = np.full(self.form.beta_shape, 1.0 / self.form.beta_shape[-1])

        def point(lam: float) -> tuple[np.ndarray, np.ndarray]:
            return (1 - lam) * a_uni + lam * a_min, (1 - lam) * b_uni + lam * b_min

        if self.form(*point(0.0)) <= self.target:
            return point(0.0)
        lo, hi = 0.0, 1.0  # f decreases along the segment (both blocks move to their cheapest vertices)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if self.form(*point(mid)) <= self.target:
                hi = mid
            else:
                lo = mid
        return point(hi)

    # ------------------------------------------------------------------ oracle
    def lmo(self, which: str, cost: np.ndarray) -> np.ndarray:
        """Linear minimisation oracle for one block with the other fixed: an LP vertex (HiGHS dual simplex)."""
        if which == "alpha":
            c0, coef = self.form.alpha_coefficients(self.beta)
            shape = self.form.alpha_shape
        elif which == "beta":
            c0, coef = self.form.beta_coefficients(self.alpha)
            shape = self.form.beta_shape
        else:
            raise ValueError(f"which must be 'alpha' or 'beta', got {which!r}")
        eq = self._eq[which]
        res = linprog(
            np.asarray(cost, dtype=np.float64).reshape(-1),
            A_ub=coef.reshape(1, -1),
            b_ub=np.array([self.target - c0]),
            A_eq=eq,
            b_eq=np.ones(eq.shape[0]),
            bounds=(0.0, 1.0),
            method="highs-ds",
        )
        current = self.alpha if which == "alpha" else self.beta
        if res.status != 0 or res.x is None:
            return current.copy()  # the current point is feasible, so the LP only fails numerically
        s = _project_simplices(res.x.reshape(shape))
        return self._repair(which, s, current, c0, coef)

    def _repair(self, which: str, s: np.ndarray, x: np.ndarray, c0: float, coef: np.ndarray) -> np.ndarray:
        """Pull ``s`` toward the feasible ``x`` if solver round-off left it above the target."""
        budget = self.target - c0
        fs, fx = float(np.sum(coef * s)), float(np.sum(coef * x))
        if fs <= budget:
            return s
        theta = max(0.0, (budget - fx) / (fs - fx)) if fs > fx else 0.0
        return x + theta * (s - x)

    # ------------------------------------------------------------------ steps
    def step_size(self) -> float:
        if self.gamma_schedule == "fixed":
            return self.gamma
        return min(1.0, self.gamma * 4.0 / (self.k + 4.0))

    def step(self, grad_alpha: np.ndarray, grad_beta: np.ndarray, *, which: str | None = None) -> str:
        """One block-coordinate step with stochastic gradients of the objective; returns the block moved."""
        which = which or ("alpha" if self.rng.random() < 0.5 else "beta")
        grad = np.asarray(grad_alpha if which == "alpha" else grad_beta, dtype=np.float64)
        buf = self._buf[which]
        buf = grad if buf is None else self.momentum * buf + (1.0 - self.momentum) * grad
        self._buf[which] = buf
        s = self.lmo(which, buf)
        gamma = self.step_size()
        x = self.alpha if which == "alpha" else self.beta
        new = x + gamma * (s - x)
        if self.value(*((new, self.beta) if which == "alpha" else (self.alpha, new))) <= self.target:
            if which == "alpha":
                self.state.alpha = new
            else:
                self.state.beta = new
        self.k += 1
        return which

    def sparsify(self, *, max_rounds: int = 100) -> None:
        """Move to a vertex: oracle steps with cost ``-x`` and a full step, alternating blocks, until stable."""
        for _ in range(max_rounds):
            changed = False
            for which in ("alpha", "beta"):
                x = self.alpha if which == "alpha" else self.beta
                s = self.lmo(which, -x)
                if not np.allclose(s, x, atol=1e-9):
                    candidate = (s, self.beta) if which == "alpha" else (self.alpha, s)
                    if self.value(*candidate) <= self.target:
                        changed = True
                        if which == "alpha":
                            self.state.alpha = s
                        else:
                            self.state.beta = s
            if not changed:
                return

    def discretize(self) -> tuple[np.ndarray, np.ndarray]:
        """One-hot ``(alpha, beta)`` with ``f <= T``: depths first, then options, never exceeding the target."""
        alpha, beta = self.alpha.copy(), self.beta.copy()
        for which in ("beta", "alpha"):
            x = beta if which == "beta" else alpha
            flat = x.reshape(-1, x.shape[-1])
            for i in range(flat.shape[0]):
                row = flat[i].copy()
                if which == "beta":
                    _, coef = self.form.beta_coefficients(alpha)
                else:
                    _, coef = self.form.alpha_coefficients(beta)
                c = coef.reshape(-1, x.shape[-1])[i]
                support = np.flatnonzero(row > 0.0)
                ranked = support[np.argsort(-row[support], kind="stable")]
                current = self.form(alpha, beta)
                pick = support[np.argmin(c[support])]  # never raises f: f is linear in this simplex
                for option in ranked:
                    if current + c[option] - float(c @ row) <= self.target:
                        pick = option
                        break
                flat[i] = 0.0
                flat[i, pick] = 1.0
        final = self.form(alpha, beta)
        if final > self.target:
            raise InfeasibleConstraintError(
                f"rounding produced {final:.6g} > target {self.target:.6g}; the relaxed point was not feasible"
            )
        return alpha, beta
