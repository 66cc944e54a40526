import math

import pytest
import torch

from miil.core.losses import AsymmetricLoss
from miil.csl import ClassPrior, PartialSelectiveLoss, partial_label_weights


def reference_loss(
    logits,
    targets,
    *,
    mode,
    gamma_pos=0.0,
    gamma_neg=1.0,
    gamma_unann=2.0,
    alpha_pos=1.0,
    alpha_neg=1.0,
    alpha_unann=1.0,
    clip=0.0,
    eps=1e-8,
    topk=0,
    scope="batch",
    prior=None,
    threshold=None,
    dtype=torch.float64,
):
    """Element by element, from the paper's equations and the reference code's selection rules (float64, or the
    reference code's float32 where saturated sigmoids make the two differ)."""
    x = logits.to(dtype)
    b, c = x.shape
    t = targets.tolist()
    p = torch.sigmoid(x)
    p_neg = [[min(1.0 - float(p[i, j].detach()) + clip, 1.0) for j in range(c)] for i in range(b)]
    w = [[1.0] * c for _ in range(b)]
    if mode in ("ignore", "ignore_normalize_classes"):
        for i in range(b):
            n_ann = sum(1 for j in range(c) if t[i][j] != -1)
            for j in range(c):
                if t[i][j] == -1:
                    w[i][j] = 0.0
                elif mode == "ignore_normalize_classes":
                    w[i][j] = 1.0 / (1 + n_ann) + 1.0
    if mode == "selective":
        if prior is not None and threshold:
            for i in range(b):
                for j in range(c):
                    if t[i][j] == -1 and prior[j] > threshold:
                        w[i][j] = 0.0
        unknown = [(p_neg[i][j], i, j) for i in range(b) for j in range(c) if t[i][j] == -1]
        if scope == "batch":
            for _, i, j in sorted(unknown)[: topk * b]:
                w[i][j] = 0.0
        else:
            for row in range(b):
                for _, i, j in sorted(u for u in unknown if u[1] == row)[:topk]:
                    w[i][j] = 0.0
    total = 0.0
    for i in range(b):
        for j in range(c):
            pij = p[i, j]
            pn = torch.clamp(1.0 - pij + clip, max=1.0) if clip > 0 else 1.0 - pij
            if t[i][j] == 1:
                term = alpha_pos * torch.log(pij.clamp(min=eps)) * (1.0 - pij.detach()) ** gamma_pos
            elif t[i][j] == 0:
                term = alpha_neg * torch.log(pn.clamp(min=eps)) * (1.0 - pn.detach()) ** gamma_neg
            else:
                term = alpha_unann * torch.log(pn.clamp(min=eps)) * (1.0 - pn.detach()) ** gamma_unann
            total = total - w[i][j] * term
    return total


def _batch(b=6, c=7, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, c, generator=g) * scale
    targets = torch.randint(-1, 2, (b, c), generator=g).float()
    return logits, targets


def _check(loss_fn, ref_kwargs, seed=0):
    logits, targets = _batch(seed=seed)
    ours_x = logits.clone().requires_grad_(True)
    ref_x = logits.double().clone().requires_grad_(True)
    ours = loss_fn(ours_x, targets)
    ref = reference_loss(ref_x, targets, **ref_kwargs)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours.double(), ref.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours_x.grad.double(), ref_x.grad, rtol=1e-4, atol=1e-6)
    return float(ours.detach())


GAMMAS = dict(gamma_pos=1.0, gamma_neg=3.0, gamma_unann=4.0, alpha_pos=1.5, alpha_neg=0.7, alpha_unann=0.4)


@pytest.mark.parametrize("mode", ["negative", "ignore", "ignore_normalize_classes"])
@pytest.mark.parametrize("clip", [0.0, 0.05])
def test_modes_match_reference(mode, clip):
    loss = PartialSelectiveLoss(mode=mode, clip=clip, **GAMMAS)
    value = _check(loss, dict(mode=mode, clip=clip, **GAMMAS))
    assert value > 0


@pytest.mark.parametrize("scope", ["batch", "sample"])
@pytest.mark.parametrize("topk", [0, 1, 2])
def test_selective_matches_reference(scope, topk):
    prior_values = [0.9, 0.01, 0.3, 0.04, 0.6, 0.02, 0.2]
    classes = [f"class_{i}" for i in range(7)]
    prior = ClassPrior.from_lists(classes, prior_values)
    loss = PartialSelectiveLoss(
        mode="selective",
        likelihood_topk=topk,
        topk_scope=scope,
        prior=prior,
        classes=classes,
        prior_threshold=0.1,
        **GAMMAS,
    )
    ref = dict(mode="selective", topk=topk, scope=scope, prior=prior_values, threshold=0.1, **GAMMAS)
    for seed in range(3):
        _check(loss, ref, seed=seed)


def test_selective_without_prior_uses_likelihood_only():
    loss = PartialSelectiveLoss(mode="selective", likelihood_topk=2, prior_threshold=0.05, **GAMMAS)
    _check(loss, dict(mode="selective", topk=2, **GAMMAS))


def test_selective_with_clip_matches_reference():
    loss = PartialSelectiveLoss(mode="selective", likelihood_topk=1, clip=0.05, **GAMMAS)
    _check(loss, dict(mode="selective", topk=1, clip=0.05, **GAMMAS), seed=4)


def test_weights_of_selective_mode():
    targets = torch.tensor([[-1.0, -1.0, 1.0, 0.0], [-1.0, -1.0, -1.0, 0.0]])
    logits = torch.tensor([[3.0, -3.0, 0.0, 0.0], [-2.0, 2.0, 1.0, 0.0]])
    p_neg = 1 - torch.sigmoid(logits)
    prior = torch.tensor([0.5, 0.01, 0.5, 0.01])
    w = partial_label_weights(targets, p_neg, mode="selective", prior=prior, prior_threshold=0.1, likelihood_topk=0)
    # Unknowns of frequent classes 0 and 2 ignored; annotated labels kept; unknowns of rare class 1 are negatives.
    assert w.tolist() == [[0.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0]]
    w = partial_label_weights(targets, p_neg, mode="selective", likelihood_topk=1)
    # Batch top 1 x 2 = 2 most likely unknowns: logits 3.0 and 2.0.
    assert w.tolist() == [[0.0, 1.0, 1.0, 1.0], [1.0, 0.0, 1.0, 1.0]]
    w = partial_label_weights(targets, p_neg, mode="selective", likelihood_topk=1, topk_scope="sample")
    assert w.tolist() == [[0.0, 1.0, 1.0, 1.0], [1.0, 0.0, 1.0, 1.0]]
    w = partial_label_weights(targets, p_neg, mode="selective", likelihood_topk=3, topk_scope="sample")
    # Row 0 has only two unknowns: both are ignored, the annotated labels are not touched.
    assert w[0].tolist() == [0.0, 0.0, 1.0, 1.0]


def test_negative_and_ignore_equal_core_asl():
    logits, targets = _batch(b=16, c=9, seed=3)
    kw = dict(gamma_pos=1.0, gamma_neg=4.0, clip=0.05)
    asl = AsymmetricLoss(**kw, reduction="sum")
    ignore = PartialSelectiveLoss(mode="ignore", gamma_unann=4.0, **kw)
    negative = PartialSelectiveLoss(mode="negative", gamma_unann=4.0, **kw)
    torch.testing.assert_close(ignore(logits, targets), asl(logits, targets))
    torch.testing.assert_close(negative(logits, targets), asl(logits, targets.clamp(min=0)))


def test_selective_degenerates_to_negative_without_prior_and_topk():
    logits, targets = _batch(seed=5)
    a = PartialSelectiveLoss(mode="selective", likelihood_topk=0, **GAMMAS)(logits, targets)
    b = PartialSelectiveLoss(mode="negative", **GAMMAS)(logits, targets)
    torch.testing.assert_close(a, b)


def test_reductions_and_autocast_dtype():
    logits, targets = _batch(seed=6)
    loss_sum = PartialSelectiveLoss(mode="ignore")(logits, targets)
    loss_none = PartialSelectiveLoss(mode="ignore", reduction="none")(logits, targets)
    loss_mean = PartialSelectiveLoss(mode="ignore", reduction="mean")(logits, targets)
    assert loss_none.shape == targets.shape
    assert float(loss_none[targets == -1].abs().sum()) == 0.0
    torch.testing.assert_close(loss_none.sum(), loss_sum)
    torch.testing.assert_close(loss_mean, loss_sum / (targets != -1).sum())
    x = logits.bfloat16().requires_grad_(True)
    PartialSelectiveLoss(mode="negative")(x, targets).backward()
    assert x.grad.dtype == torch.bfloat16 and torch.isfinite(x.grad.float()).all()
    x = logits.clone().requires_grad_(True)
    PartialSelectiveLoss(mode="negative", reduction="none")(x, targets).sum().backward()
    y = logits.clone().requires_grad_(True)
    PartialSelectiveLoss(mode="negative")(y, targets).backward()
    torch.testing.assert_close(x.grad, y.grad)


def test_extreme_logits_are_finite():
    logits = torch.tensor([[40.0, -40.0, 40.0], [-40.0, 40.0, 0.0]], requires_grad=True)
    targets = torch.tensor([[0.0, 1.0, -1.0], [1.0, -1.0, 0.0]])
    loss = PartialSelectiveLoss(mode="negative", gamma_neg=0, gamma_unann=0)(logits, targets)
    loss.backward()
    # log clamps at eps=1e-8: each of the five confidently wrong labels costs -log(1e-8).
    assert float(loss.detach()) == pytest.approx(5 * -math.log(1e-8) + math.log(2), rel=1e-4)
    assert torch.isfinite(logits.grad).all()


def test_prior_is_matched_by_name_and_is_a_buffer():
    classes = ["cat", "dog", "car"]
    loss = PartialSelectiveLoss(
        mode="selective", prior=ClassPrior({"car": 0.3, "cat": 0.01, "dog": 0.9}), classes=classes, prior_threshold=0.1
    )
    assert loss.prior.tolist() == pytest.approx([0.01, 0.9, 0.3])
    assert "prior" in dict(loss.named_buffers())
    assert "prior" not in loss.state_dict()  # not persistent: the prior file is the source of truth
    with pytest.raises(KeyError, match="no value for 1 of the 4 classes"):
        PartialSelectiveLoss(
            mode="selective", prior=ClassPrior({"cat": 0.1, "dog": 0.2, "car": 0.3}), classes=[*classes, "x"]
        )
    with pytest.raises(ValueError, match="pass classes"):
        PartialSelectiveLoss(mode="selective", prior=ClassPrior({"cat": 0.1}))


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown partial-label mode"):
        PartialSelectiveLoss(mode="positive")
    with pytest.raises(ValueError, match="topk_scope"):
        PartialSelectiveLoss(topk_scope="image")
    with pytest.raises(ValueError, match="equal"):
        PartialSelectiveLoss()(torch.zeros(2, 3), torch.zeros(2, 4))
    loss = PartialSelectiveLoss(mode="selective", prior=[0.1, 0.2])
    with pytest.raises(ValueError, match="prior has 2 values"):
        loss(torch.zeros(2, 3), torch.zeros(2, 3))


def test_batch_topk_counts_ignored_unknowns_like_the_reference():
    # The reference ranks every unknown, including those the prior already ignores, so they use up top-k slots.
    targets = -torch.ones(1, 4)
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0]])
    prior = torch.tensor([0.9, 0.0, 0.0, 0.0])
    w = partial_label_weights(
        targets, 1 - torch.sigmoid(logits), mode="selective", prior=prior, prior_threshold=0.5, likelihood_topk=1
    )
    assert w.tolist() == [[0.0, 1.0, 1.0, 1.0]]


def test_integer_gamma_power_matches_pow():
    from miil.csl.loss import _pow_

    x = torch.rand(257)
    for exponent in (1, 2, 3, 4, 5, 8, 2.5, 0.5):
        torch.testing.assert_close(_pow_(x.clone(), exponent), x**exponent, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------------------------------------- kernels
_MODES = [
    dict(mode="negative"),
    dict(mode="ignore"),
    dict(mode="ignore_normalize_classes"),
    dict(mode="selective", topk=2, prior=[0.9, 0.01, 0.3, 0.04, 0.6, 0.02, 0.2], threshold=0.1),
    dict(mode="selective", topk=1, scope="sample"),
]


def _loss_kwargs(ref: dict) -> dict:
    kw = dict(mode=ref["mode"], likelihood_topk=ref.get("topk", 0), topk_scope=ref.get("scope", "batch"))
    return dict(kw, prior=ref.get("prior"), prior_threshold=ref.get("threshold"))


@pytest.mark.parametrize("kernel", ["sparse", "dense"])
@pytest.mark.parametrize("ref", _MODES)
@pytest.mark.parametrize("clip", [0.0, 0.05])
def test_every_kernel_matches_the_reference(kernel, ref, clip):
    loss = PartialSelectiveLoss(kernel=kernel, clip=clip, **_loss_kwargs(ref), **GAMMAS)
    for seed in range(2):
        _check(loss, dict(ref, clip=clip, **GAMMAS), seed=seed)


@pytest.mark.parametrize("kernel", ["sparse", "dense"])
def test_kernels_on_extreme_logits_and_partial_labels(kernel):
    # saturated sigmoids on both sides, exact zeros, and rows that are entirely un-annotated or entirely annotated
    logits = torch.tensor(
        [[60.0, -60.0, 30.0, -30.0, 0.0, 17.0, -17.0], [-80.0, 80.0, 0.0, 1e-6, -1e-6, 9.0, -9.0]] * 3
    ) * torch.tensor([[1.0], [1.0], [0.5], [0.5], [2.0], [2.0]])
    targets = torch.tensor(
        [
            [1.0, 0.0, -1.0, -1.0, 1.0, 0.0, -1.0],
            [0.0, 1.0, 1.0, -1.0, 0.0, -1.0, 1.0],
            [-1.0] * 7,
            [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0],
            [-1.0, 1.0, -1.0, 0.0, -1.0, -1.0, 0.0],
            [0.0, -1.0, -1.0, 1.0, -1.0, 0.0, -1.0],
        ]
    )
    for ref in _MODES:
        for clip in (0.0, 0.05):
            ours_x = logits.clone().requires_grad_(True)
            ref_x = logits.clone().requires_grad_(True)
            loss = PartialSelectiveLoss(kernel=kernel, clip=clip, **_loss_kwargs(ref), **GAMMAS)
            ours = loss(ours_x, targets)
            expected = reference_loss(ref_x, targets, clip=clip, dtype=torch.float32, **ref, **GAMMAS)
            ours.backward()
            expected.backward()
            assert torch.isfinite(ours) and torch.isfinite(ours_x.grad).all()
            torch.testing.assert_close(ours, expected.detach(), rtol=1e-5, atol=1e-4)
            torch.testing.assert_close(ours_x.grad, ref_x.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
@pytest.mark.parametrize("ref", _MODES)
def test_dense_and_sparse_agree_on_every_reduction(reduction, ref):
    logits, targets = _batch(b=32, c=7, seed=7, scale=4.0)
    outs = []
    for kernel in ("sparse", "dense"):
        x = logits.clone().requires_grad_(True)
        value = PartialSelectiveLoss(kernel=kernel, reduction=reduction, **_loss_kwargs(ref), **GAMMAS)(x, targets)
        value.sum().backward()
        outs.append((value.detach(), x.grad))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(outs[0][1], outs[1][1], rtol=1e-5, atol=1e-7)


def test_compiled_kernel_falls_back_cleanly_where_compile_is_unavailable(monkeypatch):
    import miil.csl.loss as loss_module

    def unavailable(fn):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(loss_module, "_compile", unavailable)
    monkeypatch.setattr(loss_module, "_compiled_dense", None)
    monkeypatch.setattr(loss_module, "_compile_failed", False)
    logits, targets = _batch(seed=8)
    expected = PartialSelectiveLoss(mode="selective", likelihood_topk=1, kernel="sparse", **GAMMAS)(logits, targets)
    with pytest.warns(RuntimeWarning, match="torch.compile is unavailable"):
        got = PartialSelectiveLoss(mode="selective", likelihood_topk=1, kernel="compiled", **GAMMAS)(logits, targets)
    torch.testing.assert_close(got, expected)
    assert loss_module._compile_failed  # no second attempt, no second warning
    # "auto" keeps the sparse pass on the CPU
    assert PartialSelectiveLoss().kernel == "auto"
    with pytest.raises(ValueError, match="kernel"):
        PartialSelectiveLoss(kernel="fast")


def test_the_original_none_mode_is_negative():
    """The reference's partial_loss_mode=None sets every label weight to 1: the negative mode."""
    from miil.csl import resolve_partial_loss_mode

    assert resolve_partial_loss_mode(None) == "negative" and resolve_partial_loss_mode("none") == "negative"
    for name in ("negative", "ignore", "ignore_normalize_classes", "selective"):
        assert resolve_partial_loss_mode(name) == name  # the original's other names are ours
    loss = PartialSelectiveLoss(mode=None, **GAMMAS)
    assert loss.mode == "negative"
    value = _check(loss, dict(mode="negative", **GAMMAS), seed=9)
    logits, targets = _batch(seed=9)
    ignore = PartialSelectiveLoss(mode="ignore", **GAMMAS)(logits, targets)
    assert value > float(ignore)  # un-annotated labels do count
    with pytest.raises(ValueError, match="or None"):
        resolve_partial_loss_mode("partial")
