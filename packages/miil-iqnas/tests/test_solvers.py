"""The integer program on a reduced space: MILP == brute force == dynamic program, constraints hold, and the MILP's
objective equals the predictor evaluated on the returned architecture."""

import numpy as np
import pytest

from miil.hardcore import InfeasibleConstraintError, LatencyTable, SearchSpace
from miil.iqnas import (
    IQPSolver,
    brute_force_search,
    dp_search,
    evolutionary_search,
    fit_predictor,
    frank_wolfe_search,
    latency_costs,
    parameter_costs,
    random_architectures,
    solve_iqp,
)


def _budgets(latency):
    lo, hi = latency.bounds()
    return [lo, lo + 3, lo + 0.3 * (hi - lo), round(lo + 0.6 * (hi - lo)), hi + 1]


def test_milp_equals_brute_force_and_dp(estimator, latency):
    solver = IQPSolver(estimator, [latency])
    for limit in _budgets(latency):
        milp = solver.solve({"latency": limit})
        brute = brute_force_search(estimator, [latency], {"latency": limit})
        dp = dp_search(estimator, latency, limit, resolution=1.0)
        assert milp.resources["latency"] <= limit + 1e-9 and milp.feasible()
        assert dp.resources["latency"] <= limit + 1e-9
        assert milp.predicted == pytest.approx(brute.predicted, abs=1e-9)
        assert dp.predicted == pytest.approx(brute.predicted, abs=1e-9)
        assert dp.objective == pytest.approx(dp.predicted, abs=1e-9)
        assert milp.objective == pytest.approx(estimator(milp.architecture), abs=1e-6)
        assert milp.objective == pytest.approx(estimator.form(*estimator.space.alpha_beta(milp.architecture)), abs=1e-6)


def test_budget_changes_the_answer(estimator, latency):
    solver = IQPSolver(estimator, [latency])
    lo, hi = latency.bounds()
    tight, loose = solver.solve({"latency": lo + 2}), solver.solve({"latency": hi})
    assert tight.predicted < loose.predicted
    assert tight.resources["latency"] <= lo + 2


def test_several_limits_at_once(small_space, estimator, latency):
    params = parameter_costs(small_space, num_classes=10)
    lo_p, hi_p = params.bounds()
    limits = {"latency": latency.bounds()[1] * 0.7, "params": lo_p + 0.4 * (hi_p - lo_p)}
    milp = solve_iqp(estimator, [latency, params], limits)
    brute = brute_force_search(estimator, [latency, params], limits)
    assert milp.predicted == pytest.approx(brute.predicted, abs=1e-9)
    assert milp.resources["params"] <= limits["params"] + 1e-12 and milp.resources["latency"] <= limits["latency"]
    only_latency = solve_iqp(estimator, [latency], {"latency": limits["latency"]})
    assert only_latency.predicted >= milp.predicted


@pytest.mark.parametrize("kind", ["bilinear", "quadratic"])
def test_mccormick_is_exact_for_fitted_predictors(small_space, estimator, latency, kind):
    archs = random_architectures(small_space, 80, seed=3)
    rng = np.random.default_rng(0)
    interaction = np.array([a.blocks[0][0] * len(a.blocks[1]) - 2.0 * a.blocks[1][0] for a in archs])
    predictor = fit_predictor(
        small_space, archs, estimator.predict(archs) + 0.5 * interaction + rng.normal(0, 0.1, 80), kind=kind
    )
    assert np.any(predictor.weights > 0) and np.any(predictor.weights < 0)
    solver = IQPSolver(predictor, [latency])
    for limit in _budgets(latency)[1:4]:
        milp = solver.solve({"latency": limit})
        brute = brute_force_search(predictor, [latency], {"latency": limit})
        assert milp.predicted == pytest.approx(brute.predicted, abs=1e-7)
        assert milp.objective == pytest.approx(predictor(milp.architecture), abs=1e-6)


def test_infeasible_limit_is_reported(estimator, latency):
    lo, _ = latency.bounds()
    with pytest.raises(InfeasibleConstraintError, match="smallest values"):
        IQPSolver(estimator, [latency]).solve({"latency": lo - 0.5})
    with pytest.raises(InfeasibleConstraintError):
        dp_search(estimator, latency, lo - 0.5, resolution=1.0)
    with pytest.raises(ValueError, match="unknown resources"):
        IQPSolver(estimator, [latency]).solve({"flops": 3.0})


def test_alternatives_are_feasible_and_not_better_than_exact(estimator, latency):
    limit = latency.bounds()[0] + 0.4 * (latency.bounds()[1] - latency.bounds()[0])
    best = IQPSolver(estimator, [latency]).solve({"latency": limit}).predicted
    fw = frank_wolfe_search(estimator, latency, limit, steps=60)
    evo = evolutionary_search(estimator, [latency], {"latency": limit}, population=30, generations=15)
    for result in (fw, evo):
        assert result.feasible() and result.resources["latency"] <= limit + 1e-9
        assert result.predicted <= best + 1e-9
        assert result.predicted == pytest.approx(estimator(result.architecture))
    assert evo.predicted > estimator.predict(random_architectures(estimator.space, 30, seed=0)).mean()


def test_full_space_milp_is_fast_and_feasible():
    space = SearchSpace()
    rng = np.random.default_rng(0)
    table = LatencyTable(space, rng.uniform(0.2, 2.0, (5, 2, 12)), {"stem": 3.0, "head": 2.0})
    latency = latency_costs(table)
    from miil.iqnas import BlockAdditive

    acc = BlockAdditive(space, 70.0, rng.normal(0, 1, space.alpha_shape), rng.normal(0, 1, space.beta_shape))
    solver = IQPSolver(acc, [latency])
    lo, hi = latency.bounds()
    results = [solver.solve({"latency": lo + f * (hi - lo)}) for f in (0.1, 0.5)]
    for f, r in zip((0.1, 0.5), results):
        assert r.resources["latency"] <= lo + f * (hi - lo) + 1e-9
        assert r.objective == pytest.approx(acc(r.architecture), abs=1e-6)
        assert r.seconds < 10.0
    assert results[0].predicted < results[1].predicted
    dp = dp_search(acc, latency, lo + 0.5 * (hi - lo), resolution=1e-3)
    assert dp.predicted <= results[1].predicted + 1e-9
    assert dp.predicted > results[1].predicted - 0.5  # the grid loses at most a little
