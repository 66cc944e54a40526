"""The constrained search's optimiser: every iterate feasible, sparsify reaches a vertex, rounding meets the target."""

import numpy as np
import pytest

from miil.hardcore import BlockFrankWolfe, InfeasibleConstraintError, fractional_simplices, latency_form


def _targets(table, n):
    lo, hi = table.latency(table.lightest()), table.latency(table.heaviest())
    return np.linspace(lo, hi, n)


def test_every_iterate_feasible_vertex_and_final_under_target(synthetic_table):
    space = synthetic_table.space
    form = latency_form(synthetic_table)
    rng = np.random.default_rng(0)
    for target in _targets(synthetic_table, 8):
        fw = BlockFrankWolfe(form, target, gamma=0.3, gamma_schedule="decay", seed=int(target * 100))
        assert fw.value() <= target
        for _ in range(25):
            # gradients that pull toward the most expensive options: the constraint must hold anyway
            fw.step(-synthetic_table.costs() + rng.normal(size=space.alpha_shape), rng.normal(size=space.beta_shape))
            assert fw.value() <= target
            assert np.allclose(fw.alpha.sum(-1), 1) and np.all(fw.alpha >= 0)
            assert np.allclose(fw.beta.sum(-1), 1) and np.all(fw.beta >= 0)
        fw.sparsify()
        assert fw.value() <= target
        # a vertex of {simplices} x {one linear constraint}: at most one simplex is not one-hot, with two entries
        frac_a, frac_b = fractional_simplices(fw.alpha), fractional_simplices(fw.beta)
        assert len(frac_a) <= 1 and len(frac_b) <= 1
        for idx in frac_a:
            assert np.sum(fw.alpha[idx] > 1e-9) == 2
        alpha, beta = fw.discretize()
        assert fractional_simplices(alpha) == [] and fractional_simplices(beta) == []
        arch = space.from_alpha_beta(alpha, beta)
        assert synthetic_table.latency(arch) <= target
        assert form(alpha, beta) == pytest.approx(synthetic_table.latency(arch))


def test_final_architecture_meets_every_target_in_a_sweep(synthetic_table):
    space = synthetic_table.space
    form = latency_form(synthetic_table)
    rng = np.random.default_rng(1)
    for target in _targets(synthetic_table, 20):
        fw = BlockFrankWolfe(form, target, gamma=0.5, gamma_schedule="decay")
        for _ in range(5):
            fw.step(rng.normal(size=space.alpha_shape), rng.normal(size=space.beta_shape))
        fw.sparsify()
        arch = space.from_alpha_beta(*fw.discretize())
        assert synthetic_table.latency(arch) <= target


def test_lmo_minimises_cost_under_the_constraint(synthetic_table):
    form = latency_form(synthetic_table)
    target = 0.5 * sum(_targets(synthetic_table, 2))
    fw = BlockFrankWolfe(form, target)
    cost = np.random.default_rng(2).normal(size=form.beta_shape)
    s = fw.lmo("beta", cost)
    c0, coef = form.beta_coefficients(fw.alpha)
    assert c0 + np.sum(coef * s) <= target + 1e-9
    # no single-simplex swap to a vertex can lower the cost while staying feasible
    base = float(np.sum(cost * s))
    for stage in range(s.shape[0]):
        for option in range(s.shape[1]):
            t = s.copy()
            t[stage] = 0
            t[stage, option] = 1
            if c0 + np.sum(coef * t) <= target:
                assert np.sum(cost * t) >= base - 1e-9


def test_infeasible_target_raises_with_the_cheapest_latency(synthetic_table):
    form = latency_form(synthetic_table)
    lowest = synthetic_table.latency(synthetic_table.lightest())
    with pytest.raises(InfeasibleConstraintError, match=f"{lowest:.4g}"):
        BlockFrankWolfe(form, 0.9 * lowest)
    fw = BlockFrankWolfe(form, lowest)  # exactly the cheapest network is feasible
    assert fw.value() <= lowest
