"""Tests of miil.core.losses: ASL (arXiv 2009.14119) against the paper's formula, KD and soft-target CE."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from miil.core.losses import (
    AsymmetricLoss,
    AsymmetricLossSingleLabel,
    DistillationLoss,
    SoftTargetCrossEntropy,
    distillation_loss,
    soft_target_cross_entropy,
)

# Hand-picked logits / targets: a confident positive, a very easy negative (p < clip), an unannotated label,
# a hard negative, a positive at p = 0.5 and a missed positive.
LOGITS = [[2.0, -4.0, 0.7], [1.5, 0.0, -2.5]]
TARGETS = [[1, 0, -1], [0, 1, 1]]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _asl_element(x: float, y: int, gamma_neg: float, gamma_pos: float, clip: float, eps: float = 1e-8) -> float:
    """One element of the paper's ASL: L+ = (1-p)^g+ log(p), L- = p_m^g- log(1-p_m), p_m = max(p - m, 0)."""
    if y == -1:
        return 0.0
    p = _sigmoid(x)
    if y == 1:
        return -((1.0 - p) ** gamma_pos) * math.log(max(p, eps))
    p_m = max(p - clip, 0.0)
    return -(p_m**gamma_neg) * math.log(max(1.0 - p_m, eps))


def _asl_reference(gamma_neg, gamma_pos, clip, reduction):
    rows = [[_asl_element(x, y, gamma_neg, gamma_pos, clip) for x, y in zip(xr, yr)] for xr, yr in zip(LOGITS, TARGETS)]
    total = sum(sum(r) for r in rows)
    n_annotated = sum(y >= 0 for yr in TARGETS for y in yr)
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / n_annotated
    return rows


@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
@pytest.mark.parametrize(
    "gamma_neg,gamma_pos,clip", [(4.0, 1.0, 0.05), (4.0, 0.0, 0.05), (2.0, 1.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.2)]
)
def test_asl_matches_paper_formula(gamma_neg, gamma_pos, clip, reduction):
    loss_fn = AsymmetricLoss(gamma_neg=gamma_neg, gamma_pos=gamma_pos, clip=clip, reduction=reduction)
    out = loss_fn(torch.tensor(LOGITS), torch.tensor(TARGETS))
    expected = torch.tensor(_asl_reference(gamma_neg, gamma_pos, clip, reduction), dtype=torch.float32)
    assert out.dtype == torch.float32
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


def test_asl_known_values():
    # p = 0.5 positive with gamma_pos=1: -(1 - 0.5) * log(0.5); easy negative below the clip margin: exactly 0.
    loss_fn = AsymmetricLoss(gamma_neg=4.0, gamma_pos=1.0, clip=0.05, reduction="none")
    out = loss_fn(torch.tensor([[0.0, -4.0]]), torch.tensor([[1.0, 0.0]]))
    assert out[0, 0].item() == pytest.approx(0.5 * math.log(2.0), rel=1e-6)
    assert out[0, 1].item() == 0.0
    # without clipping the easy negative contributes
    out = AsymmetricLoss(gamma_neg=0.0, gamma_pos=0.0, clip=0.0, reduction="none")(
        torch.tensor([[-4.0]]), torch.tensor([[0.0]])
    )
    assert out.item() == pytest.approx(-math.log(1.0 - _sigmoid(-4.0)), rel=1e-5)


def test_asl_unannotated_labels_are_ignored():
    loss_fn = AsymmetricLoss(reduction="none")
    logits = torch.tensor(LOGITS, requires_grad=True)
    targets = torch.tensor(TARGETS)
    out = loss_fn(logits, targets)
    assert out[0, 2].item() == 0.0
    out.sum().backward()
    assert logits.grad[0, 2].item() == 0.0
    changed = torch.tensor(LOGITS)
    changed[0, 2] = -30.0
    torch.testing.assert_close(AsymmetricLoss()(changed, targets), AsymmetricLoss()(torch.tensor(LOGITS), targets))
    # "mean" normalises by the 5 annotated elements, not the 6 elements
    total = AsymmetricLoss(reduction="sum")(torch.tensor(LOGITS), targets)
    torch.testing.assert_close(AsymmetricLoss(reduction="mean")(torch.tensor(LOGITS), targets), total / 5)


def test_asl_invalid_reduction():
    with pytest.raises(ValueError, match="reduction"):
        AsymmetricLoss(reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        AsymmetricLossSingleLabel(reduction="batchmean")


def test_asl_detached_focal_weight_changes_gradient_not_value():
    targets = torch.tensor(TARGETS)
    values, grads = [], []
    for detach in (True, False):
        logits = torch.tensor(LOGITS, requires_grad=True)
        out = AsymmetricLoss(gamma_neg=4.0, gamma_pos=1.0, clip=0.05, detach_focal_weight=detach)(logits, targets)
        out.backward()
        values.append(out.detach())
        grads.append(logits.grad.clone())
    torch.testing.assert_close(values[0], values[1])
    assert not torch.allclose(grads[0], grads[1])
    # detached weight: d/dx [-w log p] = -w (1 - p) for a positive with constant w = (1 - p)^gamma_pos
    p = _sigmoid(LOGITS[0][0])
    assert grads[0][0, 0].item() == pytest.approx(-(1 - p) * (1 - p), rel=1e-5)


def test_asl_inside_no_grad_keeps_autograd_off():
    logits = torch.tensor(LOGITS, requires_grad=True)
    for detach in (True, False):
        with torch.no_grad():
            out = AsymmetricLoss(detach_focal_weight=detach)(logits, torch.tensor(TARGETS))
            assert not torch.is_grad_enabled()
        assert not out.requires_grad
    assert torch.is_grad_enabled()


def test_asl_float32_under_autocast():
    torch.manual_seed(0)
    layer = nn.Linear(8, 5)
    x = torch.randn(4, 8)
    targets = torch.randint(0, 2, (4, 5)).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = layer(x)
        assert logits.dtype == torch.bfloat16
        out = AsymmetricLoss()(logits, targets)
        out_single = AsymmetricLossSingleLabel()(logits, targets.argmax(1))
    for o in (out, out_single):
        assert o.dtype == torch.float32
        assert torch.isfinite(o)
    out.backward()
    assert torch.isfinite(layer.weight.grad).all()


def test_asl_extreme_logits_finite():
    logits = torch.tensor([[100.0, -100.0, 100.0, -100.0]], requires_grad=True)
    targets = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    for detach in (True, False):
        for gamma_pos in (0.0, 1.0):
            logits.grad = None
            out = AsymmetricLoss(gamma_pos=gamma_pos, detach_focal_weight=detach)(logits, targets)
            out.backward()
            assert torch.isfinite(out)
            assert torch.isfinite(logits.grad).all()


def _single_label_reference(logits, target, gamma_pos, gamma_neg, ls):
    """Row losses from plain python: -sum_c q_c log p_c (1 - p_t or p_c)^gamma."""
    losses = []
    for row, t in zip(logits, target):
        z = sum(math.exp(v) for v in row)
        p = [math.exp(v) / z for v in row]
        c = len(row)
        loss = 0.0
        for j, pj in enumerate(p):
            q = (1 - ls) * (j == t) + ls / c
            w = (1 - pj) ** gamma_pos if j == t else pj**gamma_neg
            loss -= q * math.log(pj) * w
        losses.append(loss)
    return losses


def test_single_label_asl_matches_formula():
    logits = [[1.0, -0.5, 2.0, 0.3], [0.2, 0.1, -1.0, 3.0], [-2.0, 0.0, 0.5, 1.0]]
    target = [2, 0, 3]
    ref = _single_label_reference(logits, target, 1.0, 4.0, 0.1)
    loss_fn = AsymmetricLossSingleLabel(gamma_pos=1.0, gamma_neg=4.0, label_smoothing=0.1, reduction="none")
    out = loss_fn(torch.tensor(logits), torch.tensor(target))
    torch.testing.assert_close(out, torch.tensor(ref), rtol=1e-5, atol=1e-6)
    out_mean = AsymmetricLossSingleLabel(gamma_pos=1.0, gamma_neg=4.0)(torch.tensor(logits), torch.tensor(target))
    assert out_mean.item() == pytest.approx(sum(ref) / 3, rel=1e-5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_single_label_asl_without_focusing_is_cross_entropy(reduction, ls):
    torch.manual_seed(1)
    logits = torch.randn(6, 5)
    target = torch.randint(0, 5, (6,))
    target[[1, 4]] = -1
    loss_fn = AsymmetricLossSingleLabel(gamma_pos=0.0, gamma_neg=0.0, label_smoothing=ls, reduction=reduction)
    out = loss_fn(logits, target)
    ref = F.cross_entropy(logits, target, label_smoothing=ls, ignore_index=-1, reduction=reduction)
    torch.testing.assert_close(out, ref)
    keep = target != -1
    if reduction != "none":
        subset = F.cross_entropy(logits[keep], target[keep], label_smoothing=ls, reduction=reduction)
        torch.testing.assert_close(out, subset)
    else:
        assert (out[~keep] == 0).all()


def test_single_label_asl_ignored_rows_do_not_matter():
    torch.manual_seed(2)
    logits = torch.randn(5, 4, requires_grad=True)
    target = torch.tensor([0, -1, 3, 2, -1])
    out = AsymmetricLossSingleLabel()(logits, target)
    out.backward()
    assert (logits.grad[[1, 4]] == 0).all()
    keep = target != -1
    torch.testing.assert_close(out, AsymmetricLossSingleLabel()(logits[keep], target[keep]))


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_distillation_matches_hand_written_kl(temperature):
    torch.manual_seed(3)
    student = torch.randn(4, 6)
    teacher = torch.randn(4, 6) * 2
    p_s = torch.softmax(student / temperature, dim=-1)
    p_t = torch.softmax(teacher / temperature, dim=-1)
    ref = 0.0
    for b in range(4):
        for c in range(6):
            pt, ps = p_t[b, c].item(), p_s[b, c].item()
            ref += pt * (math.log(pt) - math.log(ps))
    ref = ref * temperature**2 / 4
    out = DistillationLoss(temperature=temperature)(student, teacher)
    assert out.item() == pytest.approx(ref, rel=1e-5)
    assert distillation_loss(student, teacher, temperature=temperature).item() == pytest.approx(ref, rel=1e-5)
    summed = distillation_loss(student, teacher, temperature=temperature, reduction="sum")
    assert summed.item() == pytest.approx(ref * 4, rel=1e-5)


def test_distillation_zero_for_identical_logits_and_teacher_gets_no_grad():
    torch.manual_seed(4)
    logits = torch.randn(3, 7)
    assert DistillationLoss(temperature=2.0)(logits, logits.clone()).abs().item() < 1e-6
    student = torch.randn(3, 7, requires_grad=True)
    teacher = torch.randn(3, 7, requires_grad=True)
    out = DistillationLoss(temperature=2.0)(student, teacher)
    assert out.item() > 0
    out.backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_distillation_invalid_arguments():
    with pytest.raises(ValueError, match="temperature"):
        DistillationLoss(temperature=0.0)
    with pytest.raises(ValueError, match="reduction"):
        distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), reduction="avg")


def test_soft_target_cross_entropy_equals_hard_ce_for_one_hot():
    torch.manual_seed(5)
    logits = torch.randn(8, 10)
    target = torch.randint(0, 10, (8,))
    one_hot = F.one_hot(target, 10).float()
    ref = F.cross_entropy(logits, target)
    torch.testing.assert_close(soft_target_cross_entropy(logits, one_hot), ref)
    torch.testing.assert_close(SoftTargetCrossEntropy()(logits, one_hot), ref)
    soft = torch.softmax(torch.randn(8, 10), dim=-1)
    torch.testing.assert_close(soft_target_cross_entropy(logits, soft), SoftTargetCrossEntropy()(logits, soft))
