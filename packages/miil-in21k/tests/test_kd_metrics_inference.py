"""Semantic KD, semantic accuracy and hierarchical inference against small references."""

import math

import pytest
import torch
import torch.nn.functional as F

from miil.in21k import (
    SemanticAccuracyMeter,
    SemanticHierarchy,
    SemanticKDLoss,
    SemanticTree,
    hierarchical_predict,
    semantic_accuracy,
    teacher_confidence,
)


def _tree() -> SemanticTree:
    # depth 0: 0..3 | depth 1: 4..13 | depth 2: 14..29 | depth 3: 30, 31 (deepest, not trained)
    parents = [-1] * 4 + [i % 4 for i in range(10)] + [4 + i % 10 for i in range(16)] + [14, 15]
    return SemanticTree([f"c{i}" for i in range(32)], parents)


def reference_kd(student, teacher, tree):
    """The released calculate_KD_loss, level by level: sum of confidence-weighted squared probability errors."""
    depths = tree.depths
    total = 0.0
    for d in range(max(depths)):
        members = [c for c in range(len(depths)) if depths[c] == d]
        if len(members) < 2:
            continue
        ps, pt = F.softmax(student[:, members], 1), F.softmax(teacher[:, members], 1)
        k = math.ceil(len(members) / 20)
        weight = pt.topk(k, 1).values.sum(1)
        total = total + ((ps - pt) ** 2 * weight[:, None]).sum()
    return total


def test_semantic_kd_matches_reference_and_only_trains_the_student():
    tree = _tree()
    g = torch.Generator().manual_seed(0)
    student = torch.randn(5, 32, generator=g, requires_grad=True)
    teacher = torch.randn(5, 32, generator=g, requires_grad=True)
    kd = SemanticKDLoss(tree)
    value = kd(student, teacher)
    torch.testing.assert_close(value, reference_kd(student, teacher, tree))
    value.backward()
    assert student.grad.abs().sum() > 0 and teacher.grad is None
    assert float(kd(teacher.detach(), teacher.detach())) == 0.0
    mean = SemanticKDLoss(tree, reduction="batchmean")(student, teacher)
    torch.testing.assert_close(mean, value / 5)
    assert float(SemanticKDLoss(tree, distance="kl")(student, teacher).detach()) > 0
    with pytest.raises(ValueError, match="reduction"):
        SemanticKDLoss(tree, reduction="mean")


def test_teacher_confidence_is_the_top_five_percent_mass():
    probs = torch.tensor([[0.5, 0.3, 0.2] + [0.0] * 37])  # 40 classes: top ceil(2) = 2
    assert float(teacher_confidence(probs)) == pytest.approx(0.8)


def reference_semantic_accuracy(logits, targets, tree):
    depths = tree.depths
    correct = valid = 0
    for b in range(len(targets)):
        chain = [int(targets[b]), *tree.ancestors(int(targets[b]))]
        for d in range(max(depths)):
            members = [c for c in range(len(depths)) if depths[c] == d]
            at_depth = [c for c in chain if depths[c] == d]
            if len(members) > 1 and at_depth:
                valid += 1
                correct += members[int(logits[b, members].argmax())] == at_depth[0]
    return 100.0 * correct / valid


def test_semantic_accuracy_and_meter():
    tree = _tree()
    h = SemanticHierarchy(tree)
    g = torch.Generator().manual_seed(1)
    logits, targets = torch.randn(40, 32, generator=g), torch.randint(0, 32, (40,), generator=g)
    expected = reference_semantic_accuracy(logits, targets, tree)
    assert semantic_accuracy(logits, targets, h) == pytest.approx(expected)
    meter = SemanticAccuracyMeter(h)
    for chunk in range(0, 40, 7):
        meter.update(logits[chunk : chunk + 7], targets[chunk : chunk + 7])
    out = meter.compute()
    assert out["semantic_top1"] == pytest.approx(expected)
    assert out["top1"] == pytest.approx(100.0 * float((logits.argmax(1) == targets).float().mean()))
    assert set(out) == {"semantic_top1", "top1", "level0_top1", "level1_top1", "level2_top1"}
    meter.reset()
    perfect = torch.full((3, 32), -10.0)
    for row, c in enumerate([30, 20, 2]):
        for a in [c, *tree.ancestors(c)]:
            perfect[row, a] = 10.0
    meter.update(perfect, torch.tensor([30, 20, 2]))
    assert meter.compute()["semantic_top1"] == 100.0


def test_hierarchical_prediction_keeps_confident_levels():
    tree = _tree()
    h = SemanticHierarchy(tree)
    logits = torch.zeros(2, 32)
    logits[0, 1] = 8.0  # level 0: class 1 confident
    logits[0, 5] = 8.0  # level 1: class 5 (child of 1) confident
    logits[0, 15], logits[0, 16] = 3.0, 3.0  # level 2: split between two classes: not above 0.5
    logits[1, 2] = 1.0  # sample 1, level 0: p = e / (e + 3) = 0.475, below 0.5
    pred = hierarchical_predict(logits, h)
    assert [c for c, _ in pred.labels(0)] == [1, 5]
    assert pred.labels(1) == []
    assert pred.classes.shape == (2, 3) and pred.depths == [0, 1, 2]
    loose = hierarchical_predict(logits, h, threshold=0.4)
    assert [c for c, _ in loose.labels(1)] == [2]
    assert loose.labels(1)[0][1] == pytest.approx(math.e / (math.e + 3))
