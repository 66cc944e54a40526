"""The IQNAS integer program, solved exactly as a MILP with cvxpy and HiGHS.

Paper: IQNAS / BINAS (arXiv 2110.12399), section 3.2: maximise the predicted accuracy over one-hot ``alpha`` (block
options) and ``beta`` (stage depths) subject to resource limits. Both the estimator and the latency are bilinear in
``(alpha, beta)`` (an integer quadratically constrained program); the original solved it with IBM CPLEX under a time
limit. Here it is written over the 0/1 encoding of :mod:`miil.iqnas.encoding`:

- ``sum_b beta[s, b] = 1`` per stage; ``sum_c x[s, j, c] = sum_{depth_b > j} beta[s, b]`` per block (one option
  exactly when the block is present);
- every resource (latency, parameters, FLOPs: :class:`~miil.iqnas.BlockAdditive`) is linear: ``a_r^T v <= limit_r``;
- the measured estimator is linear too, so the problem is a multiple-choice knapsack MILP with no approximation;
- a fitted predictor's products ``v_i v_j`` (bilinear or quadratic) get McCormick variables ``w``, exact for
  binaries, with only the side the sign needs: ``w <= v_i, w <= v_j`` for positive weights (maximisation pushes
  ``w`` up), ``w >= v_i + v_j - 1, w >= 0`` for negative ones.

HiGHS runs with a zero relative MIP gap, so the answer is the optimum. The limits are cvxpy parameters: a solver
built once re-solves for new limits without recompiling the problem.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from miil.hardcore import InfeasibleConstraintError

from .additive import BlockAdditive
from .encoding import decode, num_variables, presence_matrix
from .predictors import as_predictor
from .result import SearchOutcome, normalise_limits, resource_values

__all__ = ["IQPSolver", "solve_iqp"]

_NO_LIMIT = 1e12


class IQPSolver:
    """The integer program for one accuracy model and a set of resource models; :meth:`solve` per set of limits.

    Args:
        objective: The accuracy model: an :class:`~miil.iqnas.AccuracyEstimator`, a :class:`~miil.iqnas.BlockAdditive`
            or a fitted :class:`~miil.iqnas.QuadraticPredictor`.
        resources: Resource models (latency, params, FLOPs), each with a distinct ``name``.
        solver: A MILP-capable cvxpy solver (``"HIGHS"``; ``"SCIPY"`` uses HiGHS through SciPy).
        solver_options: Extra options passed to the solver.
    """

    def __init__(
        self,
        objective: Any,
        resources: Sequence[BlockAdditive],
        *,
        solver: str = "HIGHS",
        solver_options: dict[str, Any] | None = None,
    ):
        self.predictor = as_predictor(objective)
        self.space = space = self.predictor.space
        self.resources = list(resources)
        names = [r.name for r in self.resources]
        if len(set(names)) != len(names):
            raise ValueError(f"resource names must be distinct, got {names}")
        for r in self.resources:
            if not r.space.same_networks(space):
                raise ValueError(f"resource {r.name!r} belongs to another search space than the accuracy model")
        if solver not in cp.installed_solvers():
            raise ValueError(f"cvxpy solver {solver!r} is not installed; installed: {cp.installed_solvers()}")
        self.solver = solver
        if solver_options is not None:
            self.solver_options = dict(solver_options)
        elif solver == "HIGHS":
            self.solver_options = {"mip_rel_gap": 0.0}
        elif solver == "SCIPY":
            self.solver_options = {"scipy_options": {"method": "highs", "mip_rel_gap": 0.0}}
        else:
            self.solver_options = {}
        self._build()

    def _build(self) -> None:
        space = self.space
        n_x, n_b = num_variables(space)
        n = n_x + n_b
        n_s, n_d = space.num_stages, len(space.depths)
        self.v = v = cp.Variable(n, boolean=True)
        stage_sum = sp.hstack([sp.csr_matrix((n_s, n_x)), sp.kron(sp.eye(n_s), np.ones((1, n_d)))]).tocsr()
        block_sum = sp.kron(sp.eye(n_s * space.max_depth), np.ones((1, space.num_options)))
        presence = sp.hstack([block_sum, -sp.csr_matrix(presence_matrix(space))]).tocsr()
        constraints = [stage_sum @ v == 1, presence @ v == 0]
        self.rhs = cp.Parameter(len(self.resources))
        if self.resources:
            a = np.stack([r.coefficients for r in self.resources])
            constraints.append(a @ v <= self.rhs)
        pred = self.predictor
        pairs, weights = pred.pairs, pred.weights
        nz = np.abs(weights) > 0
        pairs, weights = pairs[nz], weights[nz]
        objective = pred.linear @ v
        if len(pairs):
            m = len(pairs)
            w = cp.Variable(m, bounds=[0.0, 1.0])
            rows = np.arange(m)
            sel_i = sp.csr_matrix((np.ones(m), (rows, pairs[:, 0])), shape=(m, n))
            sel_j = sp.csr_matrix((np.ones(m), (rows, pairs[:, 1])), shape=(m, n))
            pos, neg = weights > 0, weights < 0
            if pos.any():
                constraints += [w[pos] <= sel_i[pos] @ v, w[pos] <= sel_j[pos] @ v]
            if neg.any():
                constraints.append(w[neg] >= sel_i[neg] @ v + sel_j[neg] @ v - 1)
            objective = objective + weights @ w
        self.problem = cp.Problem(cp.Maximize(objective), constraints)

    def solve(self, limits: Mapping[str, float | None] | None = None) -> SearchOutcome:
        """The architecture of maximal predicted accuracy within ``limits`` (``{resource name: limit}``).

        Raises:
            InfeasibleConstraintError: if no architecture meets the limits (the message names the smallest value of
                each limited resource).
        """
        limits = normalise_limits(self.resources, limits or {})
        rhs = [_NO_LIMIT if limits[r.name] is None else limits[r.name] - r.constant for r in self.resources]
        if self.resources:
            self.rhs.value = np.asarray(rhs, dtype=np.float64)
        t0 = time.perf_counter()
        self.problem.solve(solver=self.solver, **self.solver_options)
        seconds = time.perf_counter() - t0
        if self.problem.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            lowest = {r.name: round(r.bounds()[0], 6) for r in self.resources if limits[r.name] is not None}
            raise InfeasibleConstraintError(
                f"no architecture meets the limits {limits}; the smallest values in the space are {lowest}"
            )
        if self.problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or self.v.value is None:
            raise RuntimeError(f"the MILP solver {self.solver} ended with status {self.problem.status!r}")
        arch = decode(self.space, self.v.value)
        return SearchOutcome(
            "milp",
            arch,
            self.predictor(arch),
            resource_values(self.resources, arch),
            limits,
            seconds,
            objective=float(self.problem.value + self.predictor.constant),
            extra={"solver": self.solver, "status": self.problem.status},
        )


def solve_iqp(
    objective: Any,
    resources: Sequence[BlockAdditive],
    limits: Mapping[str, float | None],
    *,
    solver: str = "HIGHS",
) -> SearchOutcome:
    """Build :class:`IQPSolver` and solve once (see there)."""
    return IQPSolver(objective, resources, solver=solver).solve(limits)
