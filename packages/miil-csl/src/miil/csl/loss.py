"""Partial-label selective loss: how un-annotated labels are treated, and the partial asymmetric loss (P-ASL).

Paper: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss", Ben-Baruch et al.,
CVPR 2022 (arXiv 2110.10955), Section 3 (the Negative, Ignore and Selective modes, the class prior and the label
likelihood) and Section 4 (partial asymmetric loss). Reference code: ``src/loss_functions/partial_asymmetric_loss.py``
of https://github.com/Alibaba-MIIL/PartialLabelingCSL.

Labels are 1 (positive), 0 (annotated negative) and -1 (not annotated). With ``p = sigmoid(x)`` and the clipped
negative probability ``p_neg = min(1 - p + clip, 1)``, every label contributes ``-w * l`` where::

    l = alpha_pos * log(p)       * (1 - p)^gamma_pos          for y = 1
        alpha_neg * log(p_neg)   * (1 - p_neg)^gamma_neg      for y = 0
        alpha_unann * log(p_neg) * (1 - p_neg)^gamma_unann    for y = -1

the focusing factors are constants (computed without gradient, as in the reference), and ``w`` is the mode's label
weight: ``negative`` 1 everywhere (un-annotated labels act as negatives), ``ignore`` 0 on un-annotated labels,
``ignore_normalize_classes`` ``1 + 1 / (1 + n_annotated)`` per sample on annotated labels (Durand et al., 2019),
``selective`` 0 on the un-annotated labels of classes whose prior exceeds ``prior_threshold`` and on the
``likelihood_topk`` most likely positive un-annotated labels, 1 elsewhere.

Differences to the reference implementation:
    * the class prior is matched to the classes by name (a :class:`~miil.csl.prior.ClassPrior`), not by row order;
    * device-agnostic (the reference hard-codes CUDA);
    * the likelihood top-k can also be taken per sample (``topk_scope="sample"``); the default is the reference's
      top ``likelihood_topk * batch_size`` over the whole batch, which is found with ``torch.topk`` instead of a full
      sort (same selection up to the order of exactly tied probabilities);
    * the gradient is computed in closed form in the forward pass (the focusing factors and label weights are
      constants), so a backward pass costs one multiplication; a ``reduction`` argument is added;
    * ``mode=None`` is accepted as the reference's ``partial_loss_mode=None``, which weights every label by 1 exactly
      as ``"negative"`` does (un-annotated labels count as negatives with ``alpha_unann`` / ``gamma_unann``).

Two computations of the same values and gradients (``kernel``): ``"sparse"`` makes one in-place pass over the
un-annotated labels and recomputes the few annotated ones at their indices, which is the fast one on a CPU;
``"dense"`` computes every label with ``torch.where`` selections and no index lists (no host synchronisation), and
``"compiled"`` fuses that dense pass into one generated kernel with ``torch.compile`` (falling back to the eager dense
pass, with a warning, where compilation is unavailable). ``"auto"`` takes the compiled dense pass for CUDA tensors and
the sparse pass elsewhere.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn

from .modes import PARTIAL_LOSS_MODES, TOPK_SCOPES, resolve_partial_loss_mode
from .prior import ClassPrior

__all__ = [
    "KERNELS",
    "PARTIAL_LOSS_MODES",
    "TOPK_SCOPES",
    "PartialSelectiveLoss",
    "partial_label_weights",
    "resolve_partial_loss_mode",
]

KERNELS = ("auto", "sparse", "dense", "compiled")
_REDUCTIONS = ("sum", "mean", "none")


class _ClosedFormGrad(torch.autograd.Function):
    """Returns precomputed loss values; the backward pass multiplies the precomputed d(loss)/d(logits)."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, values: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(grad)
        ctx.logits_dtype = logits.dtype
        return values

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (grad,) = ctx.saved_tensors
        return (grad * grad_output).to(ctx.logits_dtype), None, None


def _pow_(x: torch.Tensor, exponent: float) -> torch.Tensor:
    """``x ** exponent`` in place; small integer exponents (the paper's gammas) by repeated squaring, which is much
    cheaper than the generic ``pow`` kernel on CPU."""
    if exponent == 1:
        return x
    n = int(exponent)
    if n != exponent or not 2 <= n <= 16:
        return x.pow_(exponent)
    result = None
    while True:
        if n & 1:
            result = x.clone() if result is None else result.mul_(x)
        n >>= 1
        if not n:
            return result
        if result is None and n & (n - 1) == 0:  # the rest is a power of two: square in place
            while n:
                x.mul_(x)
                n >>= 1
            return x
        x.mul_(x)


def _likelihood_topk_mask(
    unknown: torch.Tensor, p_neg: torch.Tensor, topk: int, scope: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (into the flattened ``[B, C]``) of the most likely positive un-annotated labels, and their validity."""
    # Un-annotated labels score -p_neg in [-1, 0]; annotated ones a sentinel below every real score.
    scores = torch.where(unknown, -p_neg, torch.full_like(p_neg, -2.0))
    if scope == "batch":
        k = min(topk * unknown.shape[0], scores.numel())
        values, index = torch.topk(scores.flatten(), k, sorted=False)
        return index, values > -1.5
    k = min(topk, scores.shape[1])
    values, index = torch.topk(scores, k, dim=1, sorted=False)
    rows = torch.arange(scores.shape[0], device=scores.device)[:, None] * scores.shape[1]
    return (index + rows).flatten(), (values > -1.5).flatten()


def _dense_values_and_grad(
    x: torch.Tensor,
    t: torch.Tensor,
    w: torch.Tensor | None,
    alpha_pos: float,
    alpha_neg: float,
    alpha_unann: float,
    gamma_pos: float,
    gamma_neg: float,
    gamma_unann: float,
    clip: float,
    eps: float,
    need_grad: bool,
    reduce_sum: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Every label's loss (or their sum) and d(loss)/dx in one elementwise pass, with no index lists.

    Written for ``torch.compile``, which fuses it into one kernel; ``w`` is the label weight (None: all 1) and an
    ``alpha`` of 0 silences a label kind (the ``ignore`` mode sets ``alpha_unann`` to 0).
    """
    p = torch.sigmoid(x.float())
    p_neg = 1.0 - p
    if clip > 0:
        p_neg = (p_neg + clip).clamp(max=1.0)
    pos, neg, unk = t == 1, t == 0, t == -1
    q = torch.where(pos, p, p_neg)
    base = 1.0 - q
    zero = torch.zeros_like(p)
    alpha = torch.where(pos, alpha_pos, torch.where(neg, alpha_neg, torch.where(unk, alpha_unann, zero)))
    focus = torch.where(pos, base.pow(gamma_pos), torch.where(neg, base.pow(gamma_neg), base.pow(gamma_unann)))
    coef = alpha * focus
    if w is not None:
        coef = coef * w
    values = -coef * torch.log(q.clamp(min=eps))
    out = values.sum() if reduce_sum else values
    if not need_grad:
        return out, None
    dlog = torch.where(pos, p - 1.0, p * (1.0 - p) / p_neg.clamp(min=eps))
    live = q >= eps
    if clip > 0:
        live = live & (pos | (p >= clip))  # where p_neg is clipped at 1 the clamp passes no gradient
    return out, torch.where(live, coef * dlog, zero)


_compiled_dense: Callable | None = None
_compile_failed = False


def _compile(fn: Callable) -> Callable:
    return torch.compile(fn, dynamic=None)


def _run_compiled(*args) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The dense pass through ``torch.compile``; the eager dense pass where compilation is unavailable or fails."""
    global _compiled_dense, _compile_failed
    if not _compile_failed:
        try:
            if _compiled_dense is None:
                _compiled_dense = _compile(_dense_values_and_grad)
            return _compiled_dense(*args)
        except Exception as err:  # noqa: BLE001 - any compiler failure (no triton, no C++ toolchain) has one fallback
            _compile_failed = True
            warnings.warn(
                f"PartialSelectiveLoss: torch.compile is unavailable here ({type(err).__name__}: {err}); "
                "using the eager dense computation",
                RuntimeWarning,
                stacklevel=3,
            )
    return _dense_values_and_grad(*args)


@torch.no_grad()
def partial_label_weights(
    targets: torch.Tensor,
    p_neg: torch.Tensor,
    *,
    mode: str,
    prior: torch.Tensor | None = None,
    prior_threshold: float | None = None,
    likelihood_topk: int = 0,
    topk_scope: str = "batch",
) -> torch.Tensor:
    """The per-label weights of a partial-label mode (CSL Section 3), as float32 ``[B, C]``.

    Args:
        targets: ``[B, C]`` labels 1 / 0 / -1.
        p_neg: ``[B, C]`` clipped negative probabilities ``min(1 - p + clip, 1)`` (ranks the label likelihood).
        mode: One of ``PARTIAL_LOSS_MODES``.
        prior: ``[C]`` class prior in the targets' class order (``selective`` only).
        prior_threshold: Un-annotated labels of classes with ``prior > prior_threshold`` are ignored; 0 or None
            leaves the prior out.
        likelihood_topk: ``selective``: ignore the ``likelihood_topk * B`` (batch scope) or ``likelihood_topk`` per
            sample (sample scope) un-annotated labels with the highest probability.
        topk_scope: ``"batch"`` (reference) or ``"sample"``.
    """
    unknown = targets == -1
    if mode == "negative":
        return torch.ones_like(p_neg)
    if mode == "ignore":
        return (~unknown).to(p_neg.dtype)
    if mode == "ignore_normalize_classes":
        annotated = (~unknown).to(p_neg.dtype)
        scale = 1.0 + 1.0 / (1.0 + annotated.sum(dim=1, keepdim=True))
        return annotated * scale
    if mode != "selective":
        raise ValueError(f"unknown partial-label mode {mode!r}; expected one of {PARTIAL_LOSS_MODES}")
    if prior is not None and prior_threshold:
        frequent = prior.to(p_neg.device) > prior_threshold
        keep = (~frequent)[None, :] | ~unknown
        weights = keep.to(p_neg.dtype)
    else:
        weights = torch.ones_like(p_neg)
    if likelihood_topk > 0:
        index, valid = _likelihood_topk_mask(unknown, p_neg, int(likelihood_topk), topk_scope)
        flat = weights.view(-1)
        flat.scatter_(0, index, flat.gather(0, index) * (~valid).to(flat.dtype))
    return weights


class PartialSelectiveLoss(nn.Module):
    """Multi-label loss for partially annotated data: the Negative, Ignore and class-aware Selective modes with P-ASL.

    The defaults are the reference ``train.py`` flags (mode ``negative``, ``gamma_pos=0, gamma_neg=1,
    gamma_unann=2``, alphas 1, ``clip=0``, ``likelihood_topk=5``, ``prior_threshold=0.05``). The paper's CSL is
    ``mode="selective"`` with a prior estimated by a temporary model trained in ``ignore`` mode
    (:func:`miil.csl.estimate_prior`).

    Args:
        mode: ``negative``, ``ignore``, ``ignore_normalize_classes`` or ``selective``; None is the reference's
            ``partial_loss_mode=None``, the same as ``negative``.
        gamma_pos: Focusing parameter of positives.
        gamma_neg: Focusing parameter of annotated negatives.
        gamma_unann: Focusing parameter of un-annotated labels treated as negatives.
        alpha_pos: Weight of the positive term.
        alpha_neg: Weight of the annotated-negative term.
        alpha_unann: Weight of the un-annotated term.
        clip: Probability margin shifting negatives (ASL's ``m``); 0 disables it.
        eps: Lower clamp of probabilities inside the logarithms.
        likelihood_topk: ``selective``: number of most likely un-annotated labels ignored per sample (over the whole
            batch with ``topk_scope="batch"``); 0 disables the likelihood criterion.
        topk_scope: ``"batch"``: the top ``likelihood_topk * batch_size`` of the batch, as the reference code;
            ``"sample"``: the top ``likelihood_topk`` of each sample.
        prior: ``selective``: class prior, a :class:`ClassPrior` (matched to ``classes`` by name) or a ``[C]``
            sequence already in class order; None disables the prior criterion.
        classes: Class names in the order of the logits; required when ``prior`` is a :class:`ClassPrior`.
        prior_threshold: Classes with a prior above it have their un-annotated labels ignored.
        reduction: ``"sum"`` (reference), ``"mean"`` (sum divided by the number of labels with a non-zero weight)
            or ``"none"`` (``[B, C]`` losses).
        kernel: ``"auto"`` (compiled dense pass on CUDA, sparse pass elsewhere), ``"sparse"``, ``"dense"`` or
            ``"compiled"``; all give the same values and gradients (see the module docstring).
    """

    def __init__(
        self,
        *,
        mode: str | None = "negative",
        gamma_pos: float = 0.0,
        gamma_neg: float = 1.0,
        gamma_unann: float = 2.0,
        alpha_pos: float = 1.0,
        alpha_neg: float = 1.0,
        alpha_unann: float = 1.0,
        clip: float | None = 0.0,
        eps: float = 1e-8,
        likelihood_topk: int = 5,
        topk_scope: str = "batch",
        prior: ClassPrior | torch.Tensor | Sequence[float] | None = None,
        classes: Sequence[str] | None = None,
        prior_threshold: float | None = 0.05,
        reduction: str = "sum",
        kernel: str = "auto",
    ):
        super().__init__()
        mode = resolve_partial_loss_mode(mode)
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        if topk_scope not in TOPK_SCOPES:
            raise ValueError(f"topk_scope must be one of {TOPK_SCOPES}, got {topk_scope!r}")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        if int(likelihood_topk) != likelihood_topk or likelihood_topk < 0:
            raise ValueError(f"likelihood_topk must be a non-negative integer, got {likelihood_topk!r}")
        clip = 0.0 if clip is None else float(clip)
        if not 0.0 <= clip < 1.0:
            raise ValueError(f"clip must be in [0, 1), got {clip}")
        self.mode = mode
        self.gamma_pos, self.gamma_neg, self.gamma_unann = float(gamma_pos), float(gamma_neg), float(gamma_unann)
        self.alpha_pos, self.alpha_neg, self.alpha_unann = float(alpha_pos), float(alpha_neg), float(alpha_unann)
        self.clip = clip
        self.eps = float(eps)
        self.likelihood_topk = int(likelihood_topk)
        self.topk_scope = topk_scope
        self.prior_threshold = None if prior_threshold is None else float(prior_threshold)
        self.reduction = reduction
        self.kernel = kernel
        self.classes = list(classes) if classes is not None else None
        self.register_buffer("prior", None, persistent=False)
        if prior is not None:
            self.set_prior(prior, classes=classes)

    def set_prior(
        self, prior: ClassPrior | torch.Tensor | Sequence[float] | None, *, classes: Sequence[str] | None = None
    ) -> None:
        """Set (or with None, clear) the class prior used by the ``selective`` mode.

        Args:
            prior: A :class:`ClassPrior` (looked up by class name) or a ``[C]`` sequence in class order.
            classes: Class names of the logits; defaults to the ones given to the constructor.
        """
        if prior is None:
            self.prior = None
            return
        classes = list(classes) if classes is not None else self.classes
        if isinstance(prior, ClassPrior):
            if classes is None:
                raise ValueError("a ClassPrior is matched to the classes by name: pass classes=[...] as well")
            values = prior.for_classes(classes)
        else:
            values = torch.as_tensor(prior, dtype=torch.float32).detach().flatten()
            if classes is not None and values.numel() != len(classes):
                raise ValueError(f"prior has {values.numel()} values but there are {len(classes)} classes")
        device = self.prior.device if self.prior is not None else "cpu"
        self.prior = values.to(device=device, dtype=torch.float32)
        self.classes = classes

    def label_weights(self, targets: torch.Tensor, p_neg: torch.Tensor) -> torch.Tensor:
        """The mode's ``[B, C]`` label weights for a batch (see :func:`partial_label_weights`)."""
        prior = self.prior
        if self.mode == "selective" and prior is not None and prior.numel() != targets.shape[1]:
            raise ValueError(f"the class prior has {prior.numel()} values but the logits have {targets.shape[1]}")
        return partial_label_weights(
            targets,
            p_neg,
            mode=self.mode,
            prior=prior,
            prior_threshold=self.prior_threshold,
            likelihood_topk=self.likelihood_topk,
            topk_scope=self.topk_scope,
        )

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            logits: ``[B, C]`` raw scores.
            targets: ``[B, C]`` labels 1 (positive), 0 (negative) or -1 (not annotated); other values count nothing.
        """
        if logits.ndim != 2 or logits.shape != targets.shape:
            raise ValueError(
                f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} must be equal [B, C] shapes"
            )
        need_grad = torch.is_grad_enabled() and logits.requires_grad
        kernel = self.kernel
        if kernel == "auto":
            kernel = "compiled" if logits.is_cuda else "sparse"
        with torch.no_grad():
            if kernel == "sparse":
                values, grad, weighted = self._values_and_grad(logits.detach().float(), targets.detach(), need_grad)
            else:
                values, grad, weighted = self._dense(logits.detach(), targets.detach(), need_grad, kernel)
        if self.reduction == "sum":
            out, g = (values if values.ndim == 0 else values.sum()), grad
        elif self.reduction == "mean":
            denom = weighted.clamp(min=1) if isinstance(weighted, torch.Tensor) else max(weighted, 1)
            out, g = values.sum() / denom, None if grad is None else grad / denom
        else:
            out, g = values, grad
        if g is None:
            return out
        return _ClosedFormGrad.apply(logits, out, g)

    def _dense(
        self, x: torch.Tensor, t: torch.Tensor, need_grad: bool, kernel: str
    ) -> tuple[torch.Tensor, torch.Tensor | None, int | torch.Tensor]:
        """Element losses (their sum with ``reduction="sum"``), d(loss)/dx and the count of weighted labels."""
        weights = None
        if self.mode in ("selective", "ignore_normalize_classes"):
            p_neg = torch.sigmoid(x.float()).neg_().add_(1.0)
            if self.clip > 0:
                p_neg.add_(self.clip).clamp_(max=1.0)
            weights = self.label_weights(t, p_neg)
        alpha_unann = 0.0 if self.mode in ("ignore", "ignore_normalize_classes") else self.alpha_unann
        args = (x, t, weights, self.alpha_pos, self.alpha_neg, alpha_unann)
        args += (self.gamma_pos, self.gamma_neg, self.gamma_unann, self.clip, self.eps, need_grad)
        args += (self.reduction == "sum",)
        values, grad = _run_compiled(*args) if kernel == "compiled" else _dense_values_and_grad(*args)
        if self.mode == "negative":
            weighted: int | torch.Tensor = t.numel()
        elif weights is not None and self.mode == "selective":
            weighted = (weights != 0).sum()
        else:
            weighted = (t != -1).sum()
        return values, grad, weighted

    def _values_and_grad(
        self, x: torch.Tensor, t: torch.Tensor, need_grad: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None, int | torch.Tensor]:
        """Element losses, d(loss)/dx and the number of labels with a non-zero weight.

        Un-annotated labels (most labels in practice) take one dense pass, in place; annotated labels are then
        recomputed at their own indices.
        """
        eps, clip = self.eps, self.clip
        p = torch.sigmoid(x)
        p_neg = torch.rsub(p, 1.0)
        if clip > 0:
            p_neg.add_(clip).clamp_(max=1.0)
        flat_t = t.reshape(-1)
        index = (flat_t != -1).nonzero().squeeze(1)
        weights = self.label_weights(t, p_neg) if self.mode == "selective" else None
        dense = self.mode in ("negative", "selective") and self.alpha_unann != 0
        values = torch.empty_like(p) if dense else torch.zeros_like(p)
        grad = (torch.empty_like(p) if dense else torch.zeros_like(p)) if need_grad else None
        if dense:
            # -alpha_u * w * (1 - p_neg)^gamma_u * log(p_neg); its x-derivative is coef * p (1 - p) / p_neg.
            coef = _pow_(torch.rsub(p_neg, 1.0), self.gamma_unann) if self.gamma_unann else None
            if weights is not None:
                coef = weights.clone() if coef is None else coef.mul_(weights)
            if self.alpha_unann != 1.0:
                coef = torch.full_like(p, self.alpha_unann) if coef is None else coef.mul_(self.alpha_unann)
            p_neg_eps = p_neg.clamp(min=eps)
            torch.log(p_neg_eps, out=values).neg_()
            if coef is not None:
                values.mul_(coef)
            if grad is not None:
                torch.neg(p, out=grad).add_(1.0).mul_(p).div_(p_neg_eps)
                if coef is not None:
                    grad.mul_(coef)
                grad.masked_fill_(p_neg < eps, 0.0)
                if clip > 0:
                    grad.masked_fill_(p < clip, 0.0)  # where p_neg is clipped at 1 the clamp passes no gradient
        if index.numel():
            ta = flat_t.index_select(0, index)
            pa, pna = p.view(-1).index_select(0, index), p_neg.view(-1).index_select(0, index)
            pos, neg = ta == 1, ta == 0
            q = torch.where(pos, pa, pna)
            zero = torch.zeros((), device=x.device)
            coef = torch.where(pos, self.alpha_pos, torch.where(neg, self.alpha_neg, zero))
            if weights is not None:
                coef = coef * weights.view(-1).index_select(0, index)
            elif self.mode == "ignore_normalize_classes":
                per_row = 1.0 + 1.0 / (1.0 + (t != -1).sum(dim=1).to(p.dtype))
                coef = coef * per_row.index_select(0, torch.div(index, t.shape[1], rounding_mode="floor"))
            if self.gamma_pos or self.gamma_neg:
                coef = coef * torch.pow(1.0 - q, torch.where(pos, self.gamma_pos, self.gamma_neg))
            values.view(-1).index_copy_(0, index, -coef * torch.log(q.clamp(min=eps)))
            if grad is not None:
                dlog = torch.where(pos, pa - 1.0, pa * (1.0 - pa) / pna.clamp(min=eps))
                live = q >= eps
                if clip > 0:
                    live &= pos | (pa >= clip)
                grad.view(-1).index_copy_(0, index, coef * dlog * live)
        if self.mode == "negative":
            weighted: int | torch.Tensor = t.numel()
        elif weights is not None:
            weighted = (weights != 0).sum()
        else:
            weighted = index.numel()
        return values, grad, weighted

    def extra_repr(self) -> str:
        parts = [
            f"mode={self.mode!r}",
            f"gamma_pos={self.gamma_pos}, gamma_neg={self.gamma_neg}, gamma_unann={self.gamma_unann}",
            f"alpha_pos={self.alpha_pos}, alpha_neg={self.alpha_neg}, alpha_unann={self.alpha_unann}",
            f"clip={self.clip}, reduction={self.reduction!r}, kernel={self.kernel!r}",
        ]
        if self.mode == "selective":
            parts.append(
                f"likelihood_topk={self.likelihood_topk}, topk_scope={self.topk_scope!r}, "
                f"prior_threshold={self.prior_threshold}, prior={'set' if self.prior is not None else 'none'}"
            )
        return ", ".join(parts)
