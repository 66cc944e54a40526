"""Interpretability: gains read off the coefficients, the insight sentences, the figure."""

import numpy as np

from miil.iqnas import AccuracyEstimator, contribution_table, format_table, insights, plot_contributions, stage_gains


def _estimator(space):
    block = np.full(space.alpha_shape, 70.0)
    depth = np.full(space.beta_shape, 70.0)
    for s in range(space.num_stages):
        depth[s] += np.arange(len(space.depths)) * (s + 1)  # deeper stages gain more from depth
        for c, o in enumerate(space.options):
            block[s, :, c] += (1.5 if o.expansion == 6 else 0.0) * (s + 1) + (0.5 if o.kernel == 5 else 0.0)
    return AccuracyEstimator(space, 70.0, block, depth)


def test_gains_and_insights(small_space, tmp_path):
    est = _estimator(small_space)
    rows = contribution_table(est)
    assert len(rows) == small_space.num_stages * small_space.max_depth
    assert rows[0]["expansion_gain"] == 1.5 and rows[-1]["expansion_gain"] == 3.0
    assert all(r["kernel_gain"] == 0.5 for r in rows)
    gains = stage_gains(est)
    assert np.allclose(gains["depth"], [2.0, 4.0])
    text = "\n".join(insights(est))
    assert "depth pays more in deeper stages" in text and "width (expansion ratio) pays more in deeper stages" in text
    assert "e6k5" in format_table(est)
    path = plot_contributions(est, tmp_path / "fig.png")
    assert path.stat().st_size > 10_000 and path.read_bytes()[:4] == b"\x89PNG"


def test_insights_do_not_invent_a_trend(small_space):
    est = _estimator(small_space)
    flipped = AccuracyEstimator(small_space, 70.0, est.block_accuracy[::-1], est.depth_accuracy[::-1])
    assert "depth pays more in shallower stages" in "\n".join(insights(flipped))
