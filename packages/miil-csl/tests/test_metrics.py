import math

import pytest
import torch
from sklearn.metrics import average_precision_score

from miil.csl import PartialMAPMeter, partial_average_precision, partial_mean_average_precision


def test_partial_ap_matches_sklearn_on_annotated_labels():
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(60, 6, generator=g)
    targets = torch.randint(-1, 2, (60, 6), generator=g).float()
    targets[:, 3] = torch.where(targets[:, 3] == 1, -1.0, targets[:, 3])  # no positives
    targets[:, 4] = torch.where(targets[:, 4] == 0, 1.0, targets[:, 4])  # no negatives
    targets[:, 5] = -1  # no labels
    result = partial_average_precision(scores, targets)
    for c in range(3):
        keep = targets[:, c] != -1
        expected = average_precision_score(targets[keep, c].numpy(), scores[keep, c].numpy())
        assert float(result.ap[c]) == pytest.approx(expected)
    assert result.valid.tolist() == [True, True, True, False, False, False]
    assert all(math.isnan(float(v)) for v in result.ap[3:])
    assert (result.num_no_positives, result.num_no_negatives, result.num_no_labels) == (1, 1, 1)
    assert result.mean_ap == pytest.approx(float(result.ap[:3].mean()))
    n_pos = (targets[:, :3] == 1).sum(0).double()
    assert result.macro_map == pytest.approx(float((result.ap[:3] * n_pos).sum() / n_pos.sum()))
    assert partial_mean_average_precision(scores, targets) == pytest.approx(result.mean_ap)


def test_unknown_labels_do_not_change_the_ranking_of_known_ones():
    scores = torch.tensor([[0.9], [0.8], [0.7], [0.6]])
    full = torch.tensor([[1.0], [0.0], [1.0], [0.0]])
    partial = full.clone()
    partial[1] = -1  # the hard negative is not annotated
    assert partial_mean_average_precision(scores, full) < 1.0
    assert partial_mean_average_precision(scores, partial) == pytest.approx(1.0)


def test_meter_reports_percent():
    meter = PartialMAPMeter()
    scores = torch.tensor([[2.0, -1.0], [1.0, 1.0], [-1.0, 0.5]])
    targets = torch.tensor([[1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
    meter.update(scores[:2], targets[:2])
    meter.update(scores[2:], targets[2:])
    out = meter.compute()
    assert out["mAP"] == pytest.approx(100.0)
    assert out["scored_classes"] == 2
    meter.reset()
    with pytest.raises(RuntimeError):
        meter.compute()
