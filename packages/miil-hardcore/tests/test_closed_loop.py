"""The closed loop: a device slower than its table is met on the measured latency after a correction; short searches
spend their budget instead of returning the lightest network."""

import numpy as np
import pytest
import torch

from miil.hardcore import (
    HardCoReSupernet,
    LatencyTable,
    closed_loop_search,
    conservative_calibration,
    hardcore_search,
    resolve_gamma_schedule,
)
from miil.hardcore import closed_loop as closed_loop_module


@pytest.fixture
def tiny_table(tiny_space) -> LatencyTable:
    rng = np.random.default_rng(3)
    block_ms = rng.uniform(0.5, 3.0, size=(tiny_space.num_stages, 2, tiny_space.num_options))
    return LatencyTable(tiny_space, block_ms, {"stem": 1.0, "head": 1.0}, {"cpu": "synthetic"}, {"backend": "cpu"})


def _batches(n=2):
    gen = torch.Generator().manual_seed(0)
    return [(torch.randn(4, 3, 16, 16, generator=gen), torch.randint(0, 5, (4,), generator=gen)) for _ in range(n)]


def _slow_device(table, calls, slope=1.3, intercept=0.5):
    """A device on which whole networks run 30% slower than their table sums, plus 0.5 ms (no timing noise)."""

    def measure(model, space, timing=None):
        calls.append(model.miil_test_arch)
        return slope * table.raw_latency(model.miil_test_arch) + intercept

    return measure


@pytest.fixture
def fake_device(monkeypatch, tiny_table):
    """Patch the closed loop's build + measure with a noise-free device ``slope * raw + intercept``."""
    real_build = closed_loop_module.build_child

    def build(space, arch, **kw):
        model = real_build(space, arch, **kw)
        model.miil_test_arch = arch  # what the fake device reads
        return model

    def install(slope=1.3, intercept=0.5):
        calls = []
        monkeypatch.setattr(closed_loop_module, "build_child", build)
        monkeypatch.setattr(
            closed_loop_module, "measure_network_latency", _slow_device(tiny_table, calls, slope, intercept)
        )
        return calls

    return install


def test_conservative_calibration_never_under_predicts():
    raw = np.array([1.0, 2.0, 3.0, 4.0])
    measured = np.array([1.5, 2.2, 3.9, 4.4])
    slope, intercept = conservative_calibration(raw, measured)
    assert slope > 0
    assert np.all(slope * raw + intercept >= measured - 1e-12)
    assert np.any(np.isclose(slope * raw + intercept, measured))  # tight at the worst network
    # only the covered networks bound the shift
    covered = np.array([False, False, True, False])
    s2, i2 = conservative_calibration(raw, measured, covered)
    assert s2 * raw[2] + i2 == pytest.approx(measured[2]) and i2 <= intercept
    # one network: a pure offset through its measurement
    assert conservative_calibration(np.array([2.0]), np.array([2.7])) == pytest.approx((1.0, 0.7))
    # a falling fit is not a calibration: fall back to an offset
    slope, intercept = conservative_calibration(np.array([1.0, 2.0]), np.array([3.0, 2.0]))
    assert slope == 1.0 and np.all(np.array([1.0, 2.0]) + intercept >= np.array([3.0, 2.0]))
    with pytest.raises(ValueError, match="matching"):
        conservative_calibration(np.array([1.0]), np.array([1.0, 2.0]))


def test_closed_loop_meets_the_target_on_a_slower_device(tiny_space, tiny_table, fake_device):
    fake_device()
    torch.manual_seed(0)
    net = HardCoReSupernet(tiny_space, num_classes=5)
    lo, hi = tiny_table.latency(tiny_table.lightest()), tiny_table.latency(tiny_table.heaviest())
    target = lo + 0.6 * (hi - lo)
    assert 1.3 * tiny_table.raw_latency(tiny_table.lightest()) + 0.5 <= target  # the device can meet it

    raw = hardcore_search(net, tiny_table, _batches(), target_ms=target, steps=6, progress=False)
    assert raw.predicted_ms <= target < 1.3 * tiny_table.raw_latency(raw.architecture) + 0.5  # open loop misses

    loop = closed_loop_search(net, tiny_table, _batches(), target_ms=target, max_rounds=4, steps=6, progress=False)
    assert loop.met and loop.measured_ms <= target and loop.stopped == "met"
    assert len(loop.rounds) >= 2 and not loop.rounds[0]["met"] and loop.rounds[-1]["met"]
    assert loop.rounds[0]["arch_def"] == tiny_space.arch_def(raw.architecture)  # round 1 is the plain search
    assert loop.measured_ms == pytest.approx(1.3 * tiny_table.raw_latency(loop.architecture) + 0.5)
    # the corrected table predicts every network that missed at or above its measurement: none can come back
    for r in loop.rounds[:-1]:
        arch = tiny_space.parse_arch_def(r["arch_def"])
        assert loop.table.latency(arch) >= r["measured_ms"] - 1e-9 > target
    assert loop.result.predicted_ms == pytest.approx(loop.table.latency(loop.architecture))
    record = loop.to_dict(tiny_space)["closed_loop"]
    assert record["met_on_device"] and len(record["rounds"]) == len(loop.rounds)

    once = closed_loop_search(net, tiny_table, _batches(), target_ms=target, max_rounds=1, steps=6, progress=False)
    assert not once.met and len(once.rounds) == 1 and once.measured_ms > target  # stated, not hidden
    assert once.stopped == "max_rounds"
    with pytest.raises(ValueError, match="max_rounds"):
        closed_loop_search(net, tiny_table, _batches(), target_ms=target, max_rounds=0)


def test_closed_loop_stops_when_the_device_cannot_reach_the_target(tiny_space, tiny_table, fake_device):
    fake_device(slope=3.0, intercept=0.0)  # every network runs 3x slower than its table sum
    torch.manual_seed(0)
    net = HardCoReSupernet(tiny_space, num_classes=5)
    target = 1.2 * tiny_table.latency(tiny_table.lightest())  # reachable by the table, not by the device
    loop = closed_loop_search(net, tiny_table, _batches(), target_ms=target, max_rounds=5, steps=4, progress=False)
    assert not loop.met and loop.stopped == "unreachable" and loop.rounds[-1]["unreachable"]
    assert loop.rounds[-1]["lightest_measured_ms"] > target and loop.measured_ms > target


def test_closed_loop_falls_back_to_the_lightest_network_when_it_alone_meets_the_target(
    tiny_space, tiny_table, monkeypatch
):
    """A device on which only the lightest network runs as the table says (every other one 3x slower): once the
    correction puts every network above the target, the lightest network's own measurement decides."""
    light = tiny_table.lightest()
    real_build = closed_loop_module.build_child

    def build(space, arch, **kw):
        model = real_build(space, arch, **kw)
        model.miil_test_arch = arch
        return model

    def measure(model, space, timing=None):
        return tiny_table.raw_latency(model.miil_test_arch) * (1.0 if model.miil_test_arch == light else 3.0)

    monkeypatch.setattr(closed_loop_module, "build_child", build)
    monkeypatch.setattr(closed_loop_module, "measure_network_latency", measure)
    torch.manual_seed(0)
    net = HardCoReSupernet(tiny_space, num_classes=5)
    target = 1.3 * tiny_table.latency(light)
    loop = closed_loop_search(net, tiny_table, _batches(1), target_ms=target, max_rounds=6, steps=4, progress=False)
    assert loop.met and loop.stopped == "met" and loop.architecture == light
    assert loop.rounds[-1]["unreachable"] is False and loop.rounds[-1]["lightest_measured_ms"] <= target
    assert loop.measured_ms == pytest.approx(tiny_table.raw_latency(light))


def test_auto_step_size_keeps_the_paper_setting_and_moves_short_searches():
    assert resolve_gamma_schedule(0.002, "auto", 10_000) == (0.002, "fixed")  # the paper's search
    assert resolve_gamma_schedule(0.002, "auto", 30) == (1.0, "decay")
    assert resolve_gamma_schedule(0.002, "fixed", 30) == (0.002, "fixed")
    with pytest.raises(ValueError, match="gamma_schedule"):
        resolve_gamma_schedule(0.1, "sometimes", 10)


def test_short_search_spends_the_budget_when_heavier_is_better(tiny_space, tiny_table):
    """A supernet whose loss falls with every heavier option: 10 steps must not return the lightest network."""

    class HeavierIsBetter(HardCoReSupernet):
        def forward(self, x, paths=None, *, all_paths=False, return_features=False):
            cost = torch.as_tensor(tiny_table.costs(), dtype=torch.float32)  # [stages, depth, options]
            # per-sample "quality": table cost of the sampled options of present blocks (depth weights included)
            present = torch.zeros(x.shape[0])
            for s in range(tiny_space.num_stages):
                for j in range(tiny_space.max_depth):
                    block = paths.blocks[s, j] @ cost[s, j]  # [B]
                    alive = sum(paths.depths[s][:, b] for b, d in enumerate(tiny_space.depths) if d > j)
                    present = present + block * alive
            logits = torch.zeros(x.shape[0], self.num_classes)
            return logits.index_put((torch.arange(x.shape[0]), torch.zeros(x.shape[0], dtype=torch.long)), present)

    net = HeavierIsBetter(tiny_space, num_classes=5)
    batches = [(torch.zeros(8, 3, 16, 16), torch.zeros(8, dtype=torch.long))]
    lo, hi = tiny_table.latency(tiny_table.lightest()), tiny_table.latency(tiny_table.heaviest())
    for frac in (0.3, 0.6):
        target = lo + frac * (hi - lo)
        result = hardcore_search(net, tiny_table, batches, target_ms=target, steps=10, progress=False)
        assert result.predicted_ms <= target
        assert result.predicted_ms >= 0.85 * target, (frac, result.predicted_ms, target)
        assert result.gamma_schedule == "decay"
