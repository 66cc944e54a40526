"""The 0/1 encoding and block-additive forms: parity with miil-hardcore's bilinear forms, the latency table, and the
parameters / FLOPs of the exported timm networks."""

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from miil.hardcore import build_child, latency_form
from miil.iqnas import (
    BlockAdditive,
    decode,
    encode,
    enumerate_architectures,
    flop_costs,
    latency_costs,
    parameter_costs,
    random_architectures,
)


def test_encode_decode_roundtrip_and_enumeration(small_space):
    archs = list(enumerate_architectures(small_space))
    assert len(archs) == small_space.size() == 84**2
    assert len(set(archs)) == len(archs)
    for arch in archs[::997]:
        v = encode(small_space, arch)
        assert decode(small_space, v) == arch
    with pytest.raises(ValueError, match="depths selected"):
        decode(small_space, np.zeros_like(v))


def test_additive_matches_hardcore_bilinear_form(small_space, integer_table, estimator):
    latency = latency_costs(integer_table)
    hardcore_form = latency_form(integer_table)
    for arch in random_architectures(small_space, 25, seed=2):
        alpha, beta = small_space.alpha_beta(arch)
        assert latency(arch) == pytest.approx(integer_table.latency(arch))
        assert latency(arch) == pytest.approx(hardcore_form(alpha, beta))
        assert estimator(arch) == pytest.approx(estimator.form(alpha, beta))
    values = latency.values(list(enumerate_architectures(small_space)))
    assert latency.bounds() == pytest.approx((values.min(), values.max()))


def test_params_and_flops_are_exact(small_space):
    params = parameter_costs(small_space, num_classes=7)
    flops = flop_costs(small_space, num_classes=7)
    for arch in random_architectures(small_space, 4, seed=5):
        model = build_child(small_space, arch, num_classes=7).eval()
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(torch.zeros(1, 3, 16, 16))
        assert params(arch) == pytest.approx(sum(p.numel() for p in model.parameters()) / 1e6)
        assert flops(arch) == pytest.approx(counter.get_total_flops() / 1e6)


def test_block_additive_validates(small_space):
    with pytest.raises(ValueError, match="block values have shape"):
        BlockAdditive(small_space, 0.0, np.zeros((1, 2, 3)), np.zeros(small_space.beta_shape))
    form = BlockAdditive(small_space, 1.0, np.ones(small_space.alpha_shape), np.zeros(small_space.beta_shape), "x")
    assert BlockAdditive.from_dict(form.to_dict()) == form
