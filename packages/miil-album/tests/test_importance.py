"""Image importance: CLS attention per layer and head, rollout, Spearman vs human scores, JSON reports."""

import json
import math

import pytest
import torch

from miil.album import (
    PETA,
    album_report,
    attention_rollout,
    cls_attention,
    image_importance,
    importance_spearman,
    write_album_reports,
)


def _attention(b=2, layers=3, heads=2, k=5, seed=0, mask=None):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(b, layers, heads, k + 1, k + 1, generator=g)
    if mask is not None:  # padded keys get zero weight, as in the transformer
        keys = torch.cat([torch.ones(b, 1, dtype=torch.bool), mask], 1)
        scores = scores.masked_fill(~keys[:, None, None, None, :], float("-inf"))
    return scores.softmax(-1)


def test_importance_sums_to_one_per_album_and_ignores_padding():
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    att = _attention(mask=mask)
    for scores in (
        image_importance(att, mask),
        image_importance(att, mask, layer="mean", head=1),
        attention_rollout(att, mask),
        attention_rollout(att, mask, residual=False, head=0),
    ):
        torch.testing.assert_close(scores.sum(-1), torch.ones(2))
        assert torch.all(scores[1, 2:] == 0) and torch.all(scores >= 0)
    per = cls_attention(att, mask)
    assert per.shape == (2, 3, 2, 5)
    torch.testing.assert_close(per.sum(-1), torch.ones(2, 3, 2))


def test_original_rule_is_last_layer_head_mean_cls_row():
    att = _attention()
    expected = att[:, -1].mean(1)[:, 0, 1:]
    expected = expected / expected.sum(-1, keepdim=True)
    torch.testing.assert_close(image_importance(att), expected)
    first_head0 = att[:, 0, 0, 0, 1:] / att[:, 0, 0, 0, 1:].sum(-1, keepdim=True)
    torch.testing.assert_close(image_importance(att, layer=0, head=0), first_head0)
    with pytest.raises(ValueError, match="out of range"):
        image_importance(att, layer=7)


def test_rollout_matches_the_equations():
    att = _attention(b=1, layers=3, heads=2, k=4, seed=1)
    n = 5
    joint = torch.eye(n, dtype=torch.float64)
    for layer in range(3):  # R = A'_3 A'_2 A'_1, A' = rownorm((mean_h A + I) / 2)
        a = att[0, layer].double().mean(0)
        a_res = [[0.5 * float(a[i, j]) + (0.5 if i == j else 0.0) for j in range(n)] for i in range(n)]
        a_res = torch.tensor([[v / sum(row) for v in row] for row in a_res], dtype=torch.float64)
        joint = a_res @ joint
    expected = joint[0, 1:] / joint[0, 1:].sum()
    torch.testing.assert_close(attention_rollout(att)[0], expected.float())
    # One layer without the residual: the rollout is that layer's CLS row.
    torch.testing.assert_close(attention_rollout(att[:, :1], residual=False), image_importance(att[:, :1]))


def test_spearman_against_human_scores():
    human = {"a": 0.1, "b": 0.5, "c": 0.9, "d": 0.3}
    assert importance_spearman({"a": 1, "b": 2, "c": 3, "d": 1.5}, human) == pytest.approx(1.0)
    assert importance_spearman({"c": 0.1, "a": 0.9, "b": 0.5}, human) == pytest.approx(-1.0)
    assert math.isnan(importance_spearman({"a": 1.0, "x": 2.0}, human))


def test_album_report_and_json_export(tmp_path):
    torch.manual_seed(0)
    model = PETA(torch.nn.Flatten(), num_features=12, num_classes=3, depth=2, num_heads=2, ffn_dim=8).eval()
    logits, attention = model(torch.rand(1, 4, 3, 2, 2), return_attention=True)
    names = ["p0.jpg", "p1.jpg", "p2.jpg", "p3.jpg"]
    report = album_report(
        "alb", names, logits[0].sigmoid(), attention[0], ["A", "B", "C"], human={"p0": 1, "p1": 2, "p2": 3, "p3": 4}
    )
    assert set(report["ranking"]) == set(names) and len(report["cls_attention"]) == 2
    assert len(report["cls_attention"][0]) == 2 and len(report["cls_attention"][0][0]) == 4
    assert sum(report["importance"]["last_layer"]) == pytest.approx(1.0, abs=1e-5)
    assert -1 <= report["human_spearman"]["rollout"] <= 1
    path = tmp_path / "report.json"
    write_album_reports(path, [report])
    assert json.loads(path.read_text())["album"] == "alb"
    with pytest.raises(ValueError, match="must be"):
        album_report("alb", names[:3], logits[0], attention[0], ["A", "B", "C"])
