"""Supernet: elastic blocks equal the extracted timm children, per-sample routing, Taylor ordering, search."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from miil.hardcore import (
    Architecture,
    HardCoReSupernet,
    PathWeights,
    TimingConfig,
    architecture_gradients,
    extract_child,
    fixed_paths,
    hardcore_search,
    latency_form,
    measure_latency_table,
    reorder_channels,
    sample_paths,
    soft_penalty_search,
    taylor_channel_importance,
)


def _trained_supernet(space, steps=3):
    torch.manual_seed(0)
    net = HardCoReSupernet(space, num_classes=5)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 5, (8,))
    for _ in range(steps):  # move BN statistics and weights away from their initial values
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return net.eval()


def test_extracted_children_equal_supernet_paths(tiny_space):
    net = _trained_supernet(tiny_space)
    x = torch.randn(4, 3, 16, 16)
    rng = np.random.default_rng(0)
    archs = [tiny_space.heaviest(), Architecture(((0, 0), (5, 3)))] + [
        tiny_space.random_architecture(rng) for _ in range(4)
    ]
    with torch.no_grad():
        for arch in archs:
            child = extract_child(net, arch).eval()
            ref = child(x)
            assert torch.allclose(net(x, fixed_paths(tiny_space, arch, 4)), ref, atol=1e-5)
            assert torch.allclose(net(x, fixed_paths(tiny_space, arch, 4), all_paths=True), ref, atol=1e-5)
        # per-sample paths: each sample follows its own architecture
        own = [fixed_paths(tiny_space, a, 1) for a in archs[:4]]
        paths = PathWeights(torch.cat([p.blocks for p in own], 2), torch.cat([p.depths for p in own], 1))
        ref = torch.cat([extract_child(net, a).eval()(x[i : i + 1]) for i, a in enumerate(archs[:4])])
        assert torch.allclose(net(x, paths), ref, atol=1e-5)
        assert torch.allclose(net(x, paths, all_paths=True), ref, atol=1e-5)


def test_sampled_paths_are_per_sample_one_hot(tiny_space):
    paths = sample_paths(torch.zeros(tiny_space.alpha_shape), torch.zeros(tiny_space.beta_shape), 64)
    assert paths.blocks.shape == (2, 4, 64, 12) and paths.depths.shape == (2, 64, 3)
    assert torch.all(paths.blocks.sum(-1) == 1) and torch.all(paths.depths.sum(-1) == 1)
    assert len(paths.blocks[0, 0].argmax(-1).unique()) > 1  # samples differ


def test_multipath_training_reaches_every_option(tiny_space):
    net = HardCoReSupernet(tiny_space, num_classes=5).train()
    x, y = torch.randn(96, 3, 16, 16), torch.randint(0, 5, (96,))
    F.cross_entropy(net(x), y).backward()
    block = net.stages[0][1]
    assert block.bn3[0].weight.grad is not None and block.bn3[-1].weight.grad is not None
    assert all(conv.weight.grad is not None for conv in block.conv_dw)
    assert all(se.conv_reduce.weight.grad is not None for se in block.se)


def test_taylor_reordering_keeps_the_heaviest_path_and_sorts_channels(tiny_space):
    net = _trained_supernet(tiny_space)
    x = torch.randn(4, 3, 16, 16)
    batches = [(torch.randn(8, 3, 16, 16), torch.randint(0, 5, (8,))) for _ in range(2)]
    heavy = fixed_paths(tiny_space, tiny_space.heaviest(), 4)
    with torch.no_grad():
        before = net(x, heavy)
    scores = taylor_channel_importance(net, batches)
    assert len(scores) == 2 and scores[0][0].shape == (net.stages[0][0].conv_pw.out_channels,)
    perms = reorder_channels(net, scores)
    assert any(not torch.equal(p, torch.arange(len(p))) for stage in perms for p in stage)
    with torch.no_grad():
        assert torch.allclose(net(x, heavy), before, atol=1e-5)
    again = taylor_channel_importance(net, batches)
    for stage in again:
        for s in stage:
            assert torch.all(s[:-1] >= s[1:] - 1e-6 * s.max())  # importance now decreasing


def test_architecture_gradients_and_searches_meet_the_target(tiny_space):
    net = _trained_supernet(tiny_space)
    table = measure_latency_table(tiny_space, TimingConfig(warmup=0, repeats=1), num_classes=5, progress=False)
    alpha = np.full(tiny_space.alpha_shape, 1 / 12)
    beta = np.full(tiny_space.beta_shape, 1 / 3)
    batch = (torch.randn(6, 3, 16, 16), torch.randint(0, 5, (6,)))
    ga, gb, loss = architecture_gradients(net, alpha, beta, batch)
    assert ga.shape == alpha.shape and gb.shape == beta.shape and np.isfinite(loss)
    assert np.abs(ga).sum() > 0 and np.abs(gb).sum() > 0
    assert all(p.grad is None for p in net.parameters())  # weights stay frozen
    loader = [batch, batch]
    lo, hi = table.latency(table.lightest()), table.latency(table.heaviest())
    form = latency_form(table)
    for target in (lo + 0.1 * (hi - lo), lo + 0.5 * (hi - lo)):
        result = hardcore_search(net, table, loader, target_ms=target, steps=4, gamma=0.5, progress=False)
        assert result.predicted_ms <= target and result.feasible
        assert all(h["expected_ms"] <= target for h in result.history)
        assert form(result.alpha, result.beta) <= target
        assert result.predicted_ms == pytest.approx(table.latency(result.architecture))
    soft = soft_penalty_search(net, table, loader, target_ms=lo + 0.5 * (hi - lo), steps=3, progress=False)
    assert soft.method == "soft_penalty" and soft.predicted_ms == pytest.approx(table.latency(soft.architecture))
    assert all(p.requires_grad for p in net.parameters())  # restored after the search
