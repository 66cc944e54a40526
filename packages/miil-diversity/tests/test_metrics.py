"""Diversity metrics on constructed cases with known answers, streaming vs materialized parity, the registry."""

import math

import pytest
import timm
import torch
import torch.nn as nn

from miil.diversity import (
    FEATURE_METRICS,
    PENULTIMATE,
    FeatureMoments,
    effective_rank,
    effective_rank_from_covariance,
    filter_diversity,
    mean_feature_correlation,
    measure_diversity,
    model_filter_diversity,
    pool_features,
    register_feature_metric,
)


def test_identical_filters_have_minimal_diversity():
    w = torch.randn(1, 3, 3, 3).repeat(8, 1, 1, 1)
    assert filter_diversity(w) == pytest.approx(0.0, abs=1e-12)
    w[::2] *= -3.0  # sign and scale do not make a filter different
    assert filter_diversity(w) == pytest.approx(0.0, abs=1e-12)


def test_orthogonal_filters_have_maximal_diversity():
    q, _ = torch.linalg.qr(torch.randn(27, 27, dtype=torch.float64))
    assert filter_diversity(q.T[:16].reshape(16, 3, 3, 3)) == pytest.approx(1.0, abs=1e-12)


def test_filter_diversity_known_angle_and_zero_filters():
    w = torch.tensor([[1.0, 0.0], [0.5, math.sqrt(3) / 2], [0.0, 0.0]])  # 60 degrees apart; the zero filter is skipped
    assert filter_diversity(w) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least 2"):
        filter_diversity(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))


def test_model_filter_diversity_excludes_the_classifier():
    model = nn.Sequential()
    model.add_module("conv", nn.Conv2d(3, 4, 1, bias=False))
    model.add_module("fc", nn.Linear(4, 4))
    with torch.no_grad():
        model.conv.weight.copy_(torch.eye(4, 3).reshape(4, 3, 1, 1))  # rows 0..2 orthogonal, row 3 zero
        model.fc.weight.fill_(1.0)
    overall, per_layer = model_filter_diversity(model)
    assert set(per_layer) == {"conv"}  # "fc" is the classifier: task-specific, left out by default
    assert overall == pytest.approx(1.0)
    overall, per_layer = model_filter_diversity(model, include_classifier=True)
    assert per_layer["fc"] == pytest.approx(0.0) and overall == pytest.approx(0.5)


def test_effective_rank_of_known_spectra():
    assert effective_rank(torch.ones(4)) == pytest.approx(4.0)
    assert effective_rank(torch.tensor([5.0, 0.0, 0.0])) == pytest.approx(1.0)
    assert effective_rank(torch.tensor([2.0, 1.0, 1.0])) == pytest.approx(2**1.5)  # exp(1.5 ln 2)
    # singular values are the square roots of the covariance eigenvalues
    assert effective_rank_from_covariance(torch.diag(torch.tensor([4.0, 1.0, 1.0]))) == pytest.approx(2**1.5)
    with pytest.raises(ValueError, match="non-negative"):
        effective_rank(torch.tensor([1.0, -1.0]))


def test_mean_feature_correlation_known_cases():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4000, generator=g), torch.randn(4000, generator=g)
    dead = torch.zeros(4000)
    cov = torch.cov(torch.stack([a, -a, dead]))  # perfectly anti-correlated pair, one dead unit (left out)
    assert mean_feature_correlation(cov) == pytest.approx(1.0)
    cov = torch.cov(torch.stack([a, b]))
    assert mean_feature_correlation(cov) < 0.05
    assert math.isnan(mean_feature_correlation(torch.cov(torch.stack([a, dead]))))


def test_streaming_moments_match_the_materialized_covariance():
    x = torch.randn(103, 7).double() * torch.arange(1, 8) + 3.0
    moments = FeatureMoments()
    for chunk in x.split(10):
        moments.update(chunk)
    assert moments.count == 103
    torch.testing.assert_close(moments.covariance(), torch.cov(x.T))
    with pytest.raises(ValueError, match="width changed"):
        moments.update(torch.randn(2, 3))


def test_pool_features_layouts():
    x = torch.randn(2, 5, 4, 4)
    torch.testing.assert_close(pool_features(x), x.mean((2, 3)))
    torch.testing.assert_close(pool_features(x.permute(0, 2, 3, 1), channels=5), x.mean((2, 3)))
    tokens = torch.randn(2, 9, 6)
    torch.testing.assert_close(pool_features(tokens), tokens.mean(1))


class _Images(torch.utils.data.Dataset):
    def __init__(self, n: int = 24):
        self.x = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(1))

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], 0


def test_measure_diversity_streaming_equals_materialized_per_layer():
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", num_classes=5)
    data = _Images()
    streamed = measure_diversity(model, data, batch_size=7)
    stored = measure_diversity(model, data, batch_size=5, materialize=True)
    assert streamed.images == stored.images == 24
    assert {"layer1", "layer4", PENULTIMATE} <= set(streamed.per_layer)
    for layer in ("layer2", PENULTIMATE):
        for k in ("effective_rank", "feature_correlation"):
            assert streamed.per_layer[layer][k] == pytest.approx(stored.per_layer[layer][k], rel=1e-4)  # fp32 convs

    assert streamed.overall["effective_rank"] == streamed.per_layer[PENULTIMATE]["effective_rank"]
    assert 0.0 < streamed.overall["filter_diversity"] <= 1.0
    assert 1.0 <= streamed.overall["effective_rank"] <= model.num_features
    assert model.training  # restored


def test_measure_diversity_registry_and_errors():
    model = timm.create_model("test_vit", num_classes=3, img_size=32)
    register_feature_metric("trace", lambda cov: float(cov.trace()))
    try:
        report = measure_diversity(model, _Images(8), layers=["blocks.1", PENULTIMATE], weights=[], features=["trace"])
        assert set(report.overall) == {"trace"} and report.overall["trace"] > 0
        assert set(report.per_layer) == {"blocks.1", PENULTIMATE}
    finally:
        del FEATURE_METRICS["trace"]
    with pytest.raises(KeyError, match="no_such_layer"):
        measure_diversity(model, _Images(4), layers=["no_such_layer"])
    with pytest.raises(KeyError, match="unknown feature metric"):
        measure_diversity(model, _Images(4), features=["nope"])
