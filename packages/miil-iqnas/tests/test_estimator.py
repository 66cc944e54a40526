"""The measured estimator on a small random supernet and real digits; fitted predictors; ranking quality."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Subset

from miil.core.data import DigitsDataset
from miil.core.errors import UserError
from miil.hardcore import HardCoReSupernet, extract_child
from miil.iqnas import (
    AccuracyEstimator,
    Decision,
    enumerate_architectures,
    fit_predictor,
    measure_contributions,
    one_shot_accuracy,
    random_architectures,
    ranking_quality,
)


@pytest.fixture
def supernet_and_batches(small_space):
    torch.manual_seed(0)
    supernet = HardCoReSupernet(small_space, num_classes=10).eval()
    data = Subset(DigitsDataset("test", image_size=16, channels=3), range(48))
    return supernet, list(DataLoader(data, batch_size=24))


def test_fixed_architecture_accuracy_equals_extracted_child(supernet_and_batches, small_space):
    supernet, batches = supernet_and_batches
    for arch in random_architectures(small_space, 3, seed=0):
        child = extract_child(supernet, arch).eval()
        with torch.no_grad():
            correct = sum(int((child(x).argmax(1) == y).sum()) for x, y in batches)
        assert one_shot_accuracy(supernet, batches, arch) == pytest.approx(100.0 * correct / 48)


def test_measurements_layout_and_common_random_numbers(supernet_and_batches, small_space, tmp_path):
    supernet, batches = supernet_and_batches
    est = measure_contributions(supernet, batches, passes=1, seed=3, progress=False)
    n_s, n_d, n_c = small_space.alpha_shape
    assert est.metadata["measurements"] == 1 + n_s * (len(small_space.depths) + n_d * n_c)
    assert est.base == pytest.approx(one_shot_accuracy(supernet, batches, None, seed=3))
    # block 1 of stage 0 is measured with the stage depth fixed to 2 (it is the last block), the others uniform
    fixed = Decision(blocks={(0, 1): 2}, depths={0: small_space.depths.index(2)})
    assert est.block_accuracy[0, 1, 2] == pytest.approx(one_shot_accuracy(supernet, batches, fixed, seed=3))
    assert est.depth_accuracy[1, 0] == pytest.approx(
        one_shot_accuracy(supernet, batches, Decision(depths={1: 0}), seed=3)
    )
    assert one_shot_accuracy(supernet, batches, fixed, seed=3) == one_shot_accuracy(supernet, batches, fixed, seed=3)
    arch = random_architectures(small_space, 1, seed=9)[0]
    expected = est.base + sum(
        est.block_accuracy[s, j, c] - est.base for s, b in enumerate(arch.blocks) for j, c in enumerate(b)
    )
    expected += sum(
        est.depth_accuracy[s, small_space.depths.index(len(b))] - est.base for s, b in enumerate(arch.blocks)
    )
    assert est(arch) == pytest.approx(expected)
    depth_ref = est.with_reference("depth")
    j_last = len(arch.blocks[0]) - 1
    assert depth_ref.additive.block[0, j_last] == pytest.approx(
        est.block_accuracy[0, j_last] - est.depth_accuracy[0, small_space.depths.index(j_last + 1)]
    )
    loaded = AccuracyEstimator.load(est.save(tmp_path / "est.json"))
    assert loaded == est and loaded(arch) == pytest.approx(est(arch))
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(UserError, match="not an IQNAS accuracy estimator"):
        AccuracyEstimator.load(tmp_path / "bad.json")


@pytest.mark.parametrize("kind", ["linear", "bilinear", "quadratic"])
def test_fit_recovers_a_model_of_its_family(small_space, kind):
    archs = random_architectures(small_space, 400, seed=0)
    rng = np.random.default_rng(0)
    truth = fit_predictor(small_space, archs[:50], rng.normal(size=50), kind=kind)  # an arbitrary member
    y = truth.predict(archs)
    fitted = fit_predictor(small_space, archs, y, kind=kind, min_singular=1e-8)
    test = list(enumerate_architectures(small_space))[::50]
    assert np.allclose(fitted.predict(test), truth.predict(test), atol=1e-6)


def test_richer_predictors_fit_interactions_better(small_space, estimator):
    archs = random_architectures(small_space, 1500, seed=1)
    inter = np.array([3.0 * (a.blocks[0][-1] == 3) * (len(a.blocks[1]) == 3) for a in archs])
    y = estimator.predict(archs) + inter
    fit, test = slice(0, 1200), slice(1200, 1500)
    err = {
        kind: np.mean((fit_predictor(small_space, archs[fit], y[fit], kind=kind).predict(archs[test]) - y[test]) ** 2)
        for kind in ("linear", "bilinear", "quadratic")
    }
    assert err["quadratic"] < err["linear"] and err["bilinear"] < err["linear"]


def test_ranking_quality():
    x = np.arange(10.0)
    q = ranking_quality(x, 2 * x + 1)
    assert q["kendall_tau"] == pytest.approx(1.0) and q["spearman"] == pytest.approx(1.0) and q["mse"] > 0
    assert ranking_quality(x, -x)["kendall_tau"] == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        ranking_quality(x[:2], x[:2])
