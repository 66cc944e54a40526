"""Latency tables: measured structure and bookkeeping (never timing values), files, the bilinear formula."""

import json

import numpy as np
import pytest

from miil.core.errors import UserError
from miil.hardcore import (
    LatencyTable,
    LatencyTableError,
    TimingConfig,
    bilinear_form,
    calibrate_latency,
    latency_form,
    measure_latency_table,
)

QUICK = TimingConfig(threads=1, batch_size=1, warmup=0, repeats=1, clock="thread_cpu")


def test_measure_table_structure_and_progress(tiny_space, tmp_path):
    calls = []
    table = measure_latency_table(
        tiny_space, QUICK, num_classes=5, progress=False, callback=lambda d, t, n: calls.append((d, t, n))
    )
    total = tiny_space.num_stages * 2 * tiny_space.num_options + 2
    assert [c[0] for c in calls] == list(range(1, total + 1))  # strictly increasing to the total
    assert {c[1] for c in calls} == {total}
    assert calls[0][2] == tiny_space.block_string(0, 0, 0) and calls[-1][2] == "head"
    assert table.block_ms.shape == (2, 2, 12) and np.all(table.block_ms > 0)
    assert set(table.fixed_ms) == {"stem", "head"} and all(v > 0 for v in table.fixed_ms.values())
    assert table.device["backend"] == "cpu" and table.device["torch"]
    assert table.timing["repeats"] == 1 and table.timing["num_classes"] == 5

    path = table.save(tmp_path / "lut.json")
    data = json.loads(path.read_text())
    assert data["units"] == "ms per sample" and len(data["blocks"]) == 48
    assert {"stage", "position", "in_channels", "resolution", "expansion", "kernel", "se", "ms"} <= set(
        data["blocks"][0]
    )
    loaded = LatencyTable.load(path)
    assert loaded.space == tiny_space
    assert np.array_equal(loaded.block_ms, table.block_ms) and loaded.fixed_ms == table.fixed_ms


def test_load_errors_name_the_file(tmp_path, synthetic_table):
    path = synthetic_table.save(tmp_path / "t.json")
    data = json.loads(path.read_text())
    data["blocks"] = data["blocks"][:-1]
    bad = tmp_path / "incomplete.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(LatencyTableError, match="incomplete.json.*lacks 1 block"):
        LatencyTable.load(bad)
    data = json.loads(path.read_text())
    data["units"] = "s"
    bad.write_text(json.dumps(data))
    with pytest.raises(LatencyTableError, match="ms per sample"):
        LatencyTable.load(bad)
    with pytest.raises(UserError, match="miil hardcore lut"):
        LatencyTable.load(tmp_path / "nope.json")
    with pytest.raises(ValueError, match="backend"):
        TimingConfig(backend="tpu")
    with pytest.raises(ValueError, match="threads=1"):
        TimingConfig(threads=2, clock="thread_cpu")


def test_formula_equals_sum_of_table_entries(synthetic_table):
    space = synthetic_table.space
    form = latency_form(synthetic_table)
    rng = np.random.default_rng(1)
    for _ in range(200):
        arch = space.random_architecture(rng)
        alpha, beta = space.alpha_beta(arch)
        by_hand = synthetic_table.fixed_ms["stem"] + synthetic_table.fixed_ms["head"]
        for s, options in enumerate(arch.blocks):
            by_hand += sum(synthetic_table.block_ms[s, 0 if j == 0 else 1, c] for j, c in enumerate(options))
        assert form(alpha, beta) == pytest.approx(by_hand, rel=1e-12)
        assert synthetic_table.latency(arch) == pytest.approx(by_hand, rel=1e-12)


def test_formula_is_expected_latency_and_bilinear(synthetic_table):
    space = synthetic_table.space
    form = latency_form(synthetic_table)
    rng = np.random.default_rng(2)
    alpha = rng.dirichlet(np.ones(12), size=(5, 4))
    beta = rng.dirichlet(np.ones(3), size=5)
    # Monte-Carlo expectation over independent draws equals the formula
    draws = []
    for _ in range(4000):
        blocks = []
        for s in range(5):
            depth = space.depths[rng.choice(3, p=beta[s])]
            blocks.append(tuple(int(rng.choice(12, p=alpha[s, j])) for j in range(depth)))
        draws.append(synthetic_table.latency(type(space.heaviest())(tuple(blocks))))
    assert np.mean(draws) == pytest.approx(form(alpha, beta), rel=0.01)
    c0, ca = form.alpha_coefficients(beta)
    assert c0 + np.sum(ca * alpha) == pytest.approx(form(alpha, beta))
    c0, cb = form.beta_coefficients(alpha)
    assert c0 + np.sum(cb * beta) == pytest.approx(form(alpha, beta))
    # a generic form with a linear depth term (IQNAS's accuracy estimator has one)
    r = rng.normal(size=space.beta_shape)
    generic = bilinear_form(space, synthetic_table.costs(), constant=1.0, depth_values=r)
    assert generic(alpha, beta) == pytest.approx(1.0 + form(alpha, beta) - form.constant + np.sum(r * beta))


def test_calibration_is_affine_and_keeps_the_formula(synthetic_table):
    calibrated = synthetic_table.with_calibration(1.5, 0.25)
    space = synthetic_table.space
    arch = space.random_architecture(np.random.default_rng(3))
    alpha, beta = space.alpha_beta(arch)
    assert calibrated.latency(arch) == pytest.approx(1.5 * synthetic_table.raw_latency(arch) + 0.25)
    assert latency_form(calibrated)(alpha, beta) == pytest.approx(calibrated.latency(arch))


def test_calibrate_reports_every_network(tiny_space):
    table = measure_latency_table(tiny_space, QUICK, num_classes=5, progress=False)
    report = calibrate_latency(table, num_archs=3, progress=False)
    assert len(report.rows) == 3 == len(report.measured)
    assert report.architectures[0] == table.lightest() and report.architectures[1] == table.heaviest()
    assert np.all(report.measured > 0) and report.slope > 0
    assert np.allclose(report.predicted, [table.latency(a) for a in report.architectures])
    assert report.mean_relative_error >= 0


def test_onnx_backend_reports_missing_runtime_or_measures(tiny_space):
    timing = TimingConfig(backend="onnx", warmup=0, repeats=1)
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"miil-hardcore\[onnx\]"):
            measure_latency_table(tiny_space, timing, num_classes=5, progress=False)
        return
    table = measure_latency_table(tiny_space, timing, num_classes=5, progress=False)
    assert np.all(table.block_ms > 0) and table.device["backend"] == "onnx"
