"""Tests of miil.core.metrics against scikit-learn, scipy and plain loops."""

import json
import math
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, precision_score, recall_score

from miil.core.metrics import (
    AccuracyMeter,
    MeanAPMeter,
    Meter,
    average_precision,
    mean_average_precision,
    multilabel_prf,
    spearman,
    topk_accuracy,
)


def _multilabel_data(seed, n=120, c=9, decimals=None, unannotated=0.0):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n, c))
    targets = (rng.random((n, c)) < 0.3).astype(np.float64)
    targets[0, :] = 1.0  # every class has a positive
    targets[1, :] = 0.0  # and a negative
    if decimals is not None:
        scores = np.round(rng.random((n, c)), decimals)
    if unannotated:
        mask = rng.random((n, c)) < unannotated
        mask[:2] = False
        targets[mask] = -1.0
    return scores, targets


def _sklearn_ap(scores, targets):
    aps = []
    for c in range(scores.shape[1]):
        keep = targets[:, c] >= 0
        aps.append(average_precision_score(targets[keep, c], scores[keep, c]))
    return np.array(aps)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("decimals", [None, 1])
def test_average_precision_matches_sklearn(seed, decimals):
    scores, targets = _multilabel_data(seed, decimals=decimals)
    if decimals is not None:
        assert len(np.unique(scores)) <= 11  # heavy ties
    ap = average_precision(torch.from_numpy(scores), torch.from_numpy(targets))
    assert ap.dtype == torch.float64 and ap.shape == (scores.shape[1],)
    np.testing.assert_allclose(ap.numpy(), _sklearn_ap(scores, targets), rtol=0, atol=1e-12)
    # numpy inputs and float32 tensors are accepted
    np.testing.assert_allclose(average_precision(scores, targets).numpy(), ap.numpy(), rtol=0, atol=0)
    expected_map = _sklearn_ap(scores, targets).mean()
    assert mean_average_precision(scores, targets) == pytest.approx(expected_map, abs=1e-12)


@pytest.mark.parametrize("decimals", [None, 1])
def test_average_precision_ignores_unannotated(decimals):
    scores, targets = _multilabel_data(7, n=150, decimals=decimals, unannotated=0.4)
    assert (targets == -1).sum() > 100
    ap = average_precision(scores, targets).numpy()
    np.testing.assert_allclose(ap, _sklearn_ap(scores, targets), rtol=0, atol=1e-12)
    # treating the unannotated entries as negatives would give a different answer
    assert not np.allclose(ap, _sklearn_ap(scores, np.clip(targets, 0, 1)))


def test_average_precision_small_hand_example():
    # ranks: 0.9 (+), 0.8 (-), 0.8 (+), 0.1 (+) -> thresholds {0.9, 0.8, 0.1}
    # AP = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 3/4
    scores = torch.tensor([0.9, 0.8, 0.8, 0.1, 0.5])
    targets = torch.tensor([1, 0, 1, 1, -1])
    ap = average_precision(scores, targets)
    assert ap.ndim == 0
    assert ap.item() == pytest.approx((1 + 2 / 3 + 3 / 4) / 3, abs=1e-12)


def test_average_precision_class_without_positives_is_nan():
    scores, targets = _multilabel_data(3, c=4)
    targets[:, 2] = 0.0
    targets[:, 3] = -1.0
    ap = average_precision(scores, targets)
    assert math.isnan(ap[2]) and math.isnan(ap[3])
    assert torch.isfinite(ap[[0, 1]]).all()


def test_mean_average_precision_skip_empty_and_require_negatives():
    scores, targets = _multilabel_data(4, c=5)
    targets[:, 1] = 0.0  # no positives
    targets[:, 3] = 1.0  # no negatives (AP = 1)
    ref = _sklearn_ap(scores[:, [0, 2, 3, 4]], targets[:, [0, 2, 3, 4]])
    assert ref[2] == pytest.approx(1.0)
    assert mean_average_precision(scores, targets) == pytest.approx(ref.mean(), abs=1e-12)
    assert mean_average_precision(scores, targets, skip_empty=False) == pytest.approx(ref.sum() / 5, abs=1e-12)
    ref_partial = ref[[0, 1, 3]].mean()
    assert mean_average_precision(scores, targets, require_negatives=True) == pytest.approx(ref_partial, abs=1e-12)
    both = mean_average_precision(scores, targets, skip_empty=False, require_negatives=True)
    assert both == pytest.approx(ref[[0, 1, 3]].sum() / 4, abs=1e-12)
    assert math.isnan(mean_average_precision(scores[:, [1]], targets[:, [1]]))
    assert 0.0 <= mean_average_precision(scores, targets) <= 1.0


def test_average_precision_shape_mismatch():
    with pytest.raises(ValueError):
        average_precision(torch.zeros(3, 2), torch.zeros(3, 3))


def _topk_loop(logits, targets, k):
    hits, n = 0, 0
    for row, t in zip(logits.tolist(), targets.tolist()):
        if t < 0:
            continue
        n += 1
        ranked = sorted(range(len(row)), key=lambda j: -row[j])
        hits += t in ranked[:k]
    return 100.0 * hits / n


def test_topk_accuracy_matches_loop():
    torch.manual_seed(0)
    logits = torch.randn(50, 8)
    targets = torch.randint(0, 8, (50,))
    targets[::7] = -1
    ks = (1, 3, 5)
    out = topk_accuracy(logits, targets, topk=ks)
    assert out == pytest.approx([_topk_loop(logits, targets, k) for k in ks])
    assert 0 < out[0] < out[1] < out[2] < 100
    assert topk_accuracy(logits, targets, topk=(8, 20)) == pytest.approx([100.0, 100.0])
    assert topk_accuracy(logits.numpy(), targets.numpy())[0] == pytest.approx(out[0])


def _prf_loop(scores, targets, pred):
    n, c = scores.shape
    tp = [0] * c
    n_pred = [0] * c
    n_pos = [0] * c
    for i in range(n):
        for j in range(c):
            if targets[i, j] < 0:
                continue
            tp[j] += bool(pred[i, j] and targets[i, j] == 1)
            n_pred[j] += bool(pred[i, j])
            n_pos[j] += bool(targets[i, j] == 1)
    cp = sum(t / p if p else 0.0 for t, p in zip(tp, n_pred)) / c
    cr = sum(t / p if p else 0.0 for t, p in zip(tp, n_pos)) / c
    op, or_ = sum(tp) / sum(n_pred), sum(tp) / sum(n_pos)
    return {
        "CP": 100 * cp,
        "CR": 100 * cr,
        "CF1": 100 * 2 * cp * cr / (cp + cr),
        "OP": 100 * op,
        "OR": 100 * or_,
        "OF1": 100 * 2 * op * or_ / (op + or_),
    }


def test_multilabel_prf_threshold_matches_loop_and_sklearn():
    scores, targets = _multilabel_data(5, n=60, c=6, unannotated=0.2)
    probs = 1 / (1 + np.exp(-scores))
    out = multilabel_prf(probs, targets, threshold=0.7)
    assert out == pytest.approx(_prf_loop(probs, targets, probs >= 0.7))
    # without unannotated entries CP / CR are sklearn's macro precision / recall
    clean = np.clip(targets, 0, 1)
    out = multilabel_prf(torch.from_numpy(probs), torch.from_numpy(clean), threshold=0.7)
    pred = (probs >= 0.7).astype(int)
    assert out["CP"] == pytest.approx(100 * precision_score(clean, pred, average="macro", zero_division=0))
    assert out["CR"] == pytest.approx(100 * recall_score(clean, pred, average="macro", zero_division=0))
    assert out["OP"] == pytest.approx(100 * precision_score(clean, pred, average="micro", zero_division=0))
    assert out["OR"] == pytest.approx(100 * recall_score(clean, pred, average="micro", zero_division=0))


def test_multilabel_prf_top_k_matches_loop():
    scores, targets = _multilabel_data(6, n=40, c=7, unannotated=0.1)
    top3 = np.zeros_like(scores, dtype=bool)
    np.put_along_axis(top3, np.argsort(-scores, axis=1)[:, :3], True, axis=1)
    assert multilabel_prf(scores, targets, top_k=3) == pytest.approx(_prf_loop(scores, targets, top3))


def test_multilabel_prf_hand_example_and_guards():
    scores = torch.tensor([[0.9, 0.2, 0.1], [0.6, 0.7, 0.3], [0.4, 0.1, 0.2]])
    targets = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 0, 0]])
    out = multilabel_prf(scores, targets, threshold=0.5)
    # predictions: (0,0) tp, (1,0) fp, (1,1) tp; class 2 has no predictions -> precision 0
    cp, cr = (0.5 + 1.0 + 0.0) / 3, (0.5 + 1.0 + 0.0) / 3
    assert out["CP"] == pytest.approx(100 * cp)
    assert out["CR"] == pytest.approx(100 * cr)
    assert out["CF1"] == pytest.approx(100 * cp)
    assert out["OP"] == pytest.approx(100 * 2 / 3)
    assert out["OR"] == pytest.approx(100 * 2 / 4)
    assert out["OF1"] == pytest.approx(100 * 2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    nothing = multilabel_prf(scores, targets, threshold=2.0)
    assert all(v == 0.0 for v in nothing.values())
    with pytest.raises(ValueError, match="exactly one"):
        multilabel_prf(scores, targets)
    with pytest.raises(ValueError, match="exactly one"):
        multilabel_prf(scores, targets, threshold=0.5, top_k=1)


@pytest.mark.parametrize("seed", [0, 1])
def test_spearman_matches_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    a = np.round(rng.random(40), 1)
    b = np.round(a + rng.normal(scale=0.3, size=40), 1)
    assert len(np.unique(a)) < 40 and len(np.unique(b)) < 40
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    assert spearman(torch.from_numpy(a), torch.from_numpy(-a)) == pytest.approx(-1.0)
    c = rng.normal(size=25)
    d = rng.normal(size=25)
    assert spearman(c.tolist(), d.tolist()) == pytest.approx(spearmanr(c, d).statistic, abs=1e-12)


def test_spearman_invalid_inputs():
    with pytest.raises(ValueError):
        spearman([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        spearman([1.0], [2.0])
    with pytest.raises(ValueError):
        spearman(np.zeros((3, 2)), np.zeros((3, 2)))
    assert math.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


def test_mean_ap_meter_accumulates():
    scores, targets = _multilabel_data(8, n=100, c=6, unannotated=0.1)
    logits, y = torch.from_numpy(scores).float(), torch.from_numpy(targets)
    meter = MeanAPMeter(prf_threshold=0.6)
    assert isinstance(meter, Meter)
    for chunk in (slice(0, 13), slice(13, 50), slice(50, 100)):
        meter.update(logits[chunk].requires_grad_(), y[chunk])
    result = meter.compute()
    assert result["mAP"] == pytest.approx(100 * mean_average_precision(logits, y), abs=1e-10)
    assert result["mAP"] == pytest.approx(100 * _sklearn_ap(logits.numpy(), targets).mean(), abs=1e-8)
    expected_prf = multilabel_prf(torch.sigmoid(logits.double()), y, threshold=0.6)
    for key in ("CP", "CR", "CF1", "OP", "OR", "OF1"):
        assert result[key] == pytest.approx(expected_prf[key])
    meter.reset()
    meter.update(logits[:50], y[:50])
    assert meter.compute()["mAP"] == pytest.approx(100 * mean_average_precision(logits[:50], y[:50]))
    plain = MeanAPMeter()
    plain.update(logits, y)
    assert set(plain.compute()) == {"mAP"}


def test_mean_ap_meter_sigmoid_off_uses_raw_scores():
    scores, targets = _multilabel_data(9, n=40, c=4)
    probs = torch.from_numpy(1 / (1 + np.exp(-scores)))
    meter = MeanAPMeter(sigmoid=False, prf_threshold=0.5, skip_empty=False, require_negatives=True)
    meter.update(probs, torch.from_numpy(targets))
    result = meter.compute()
    assert result["OP"] == pytest.approx(multilabel_prf(probs, targets, threshold=0.5)["OP"])
    assert result["mAP"] == pytest.approx(100 * mean_average_precision(probs, targets))


def test_accuracy_meter_accumulates_and_skips_large_k():
    torch.manual_seed(1)
    logits = torch.randn(70, 4)
    targets = torch.randint(0, 4, (70,))
    meter = AccuracyMeter(topk=(1, 3, 5))
    with pytest.raises(RuntimeError):
        meter.compute()
    for chunk in torch.split(torch.arange(70), 16):
        meter.update(logits[chunk].bfloat16(), targets[chunk])
    result = meter.compute()
    assert set(result) == {"top1", "top3"}
    expected = topk_accuracy(logits.bfloat16().float(), targets, topk=(1, 3))
    assert [result["top1"], result["top3"]] == pytest.approx(expected)
    assert result["top1"] == pytest.approx(_topk_loop(logits.bfloat16().float(), targets, 1))


_DDP_WORKER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import torch
    import torch.distributed as dist
    from miil.core.distributed import get_rank, init_distributed
    from miil.core.metrics import AccuracyMeter, MeanAPMeter

    init_distributed("cpu")
    rank = get_rank()
    rng = np.random.default_rng(0)
    scores = torch.from_numpy(rng.normal(size=(50, 5)))
    targets = torch.from_numpy((rng.random((50, 5)) < 0.4).astype(np.float64))
    labels = torch.from_numpy(rng.integers(0, 5, size=50))
    part = slice(0, 17) if rank == 0 else slice(17, 50)  # unequal shards
    ap_meter, acc_meter = MeanAPMeter(prf_threshold=0.5), AccuracyMeter(topk=(1, 2))
    ap_meter.update(scores[part], targets[part])
    acc_meter.update(scores[part], labels[part])
    sharded = {**ap_meter.compute(), **acc_meter.compute()}
    # A rank without any validation sample (sets smaller than the world size) still takes part in the gather.
    ap_one, acc_one = MeanAPMeter(prf_threshold=0.5), AccuracyMeter(topk=(1, 2))
    if rank == 0:
        ap_one.update(scores, targets)
        acc_one.update(scores, labels)
    one_rank = {**ap_one.compute(), **acc_one.compute()}
    print(json.dumps({"sharded": sharded, "one_rank": one_rank}))
    dist.destroy_process_group()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.ddp
def test_meters_gather_over_ddp_ranks():
    port = _free_port()
    procs = []
    for rank in range(2):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "CUDA_VISIBLE_DEVICES": "",
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", _DDP_WORKER], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    rng = np.random.default_rng(0)
    scores = torch.from_numpy(rng.normal(size=(50, 5)))
    targets = torch.from_numpy((rng.random((50, 5)) < 0.4).astype(np.float64))
    labels = torch.from_numpy(rng.integers(0, 5, size=50))
    expected = {
        "mAP": 100 * mean_average_precision(scores, targets),
        **multilabel_prf(torch.sigmoid(scores), targets, threshold=0.5),
        "top1": topk_accuracy(scores, labels)[0],
        "top2": topk_accuracy(scores, labels, topk=(2,))[0],
    }
    for result in results:
        assert result["sharded"] == pytest.approx(expected)
        assert result["one_rank"] == pytest.approx(expected)
