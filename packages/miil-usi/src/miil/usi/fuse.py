"""Folding batch normalization into the preceding convolution or linear layer, for any timm model.

Paper: USI (arXiv 2204.03475), its ``kd/helpers.py`` and ``Speed_Accuracy_Comparisons.md``: the KD teacher runs with
its BN layers fused, and every throughput in the speed-accuracy comparisons is measured on BN-fused models. The original
``kd/helpers.py`` paired each conv with the module *registered* right after it, which fuses the wrong layers when a
model's registration order differs from its execution order. Here the pairs come from the data flow: one forward
pass with hooks records which batch-norm layer consumes exactly the tensor a conv (or linear) layer produced; the
fused model is then checked numerically against the original, and any pair that changes the output is left unfused.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

__all__ = ["FuseResult", "fuse_batchnorm"]

_LINEAR_FORWARDS = {nn.Conv1d.forward, nn.Conv2d.forward, nn.Conv3d.forward, nn.Linear.forward}


@dataclass
class FuseResult:
    """What :func:`fuse_batchnorm` did.

    Args:
        fused: ``(producer, batch_norm)`` module names of the pairs that were folded.
        skipped: ``(producer, batch_norm, reason)`` for candidate pairs that were left alone.
        remaining_batchnorms: Batch-norm layers still in the model afterwards.
        max_abs_diff: Largest absolute output difference between the fused and the original model.
    """

    fused: list[tuple[str, str]]
    skipped: list[tuple[str, str, str]]
    remaining_batchnorms: int
    max_abs_diff: float


def _is_weight_linear(module: nn.Module) -> bool:
    """True for convs/linears whose output is linear in ``weight`` (standardized-weight convs are not)."""
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return False
    if not isinstance(module, nn.modules.conv._ConvNd | nn.Linear):
        return False
    if type(module).forward in _LINEAR_FORWARDS:
        return True
    # timm's Conv2dSame pads and then calls F.conv2d with the plain weight: safe to fold.
    return type(module).__name__ == "Conv2dSame"


def _bn_replacement(bn: _BatchNorm) -> nn.Module | None:
    """What stands in for a folded batch norm: nothing, or the activation a fused norm+act layer applies after it."""
    if type(bn) in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d):
        return nn.Identity()
    drop, act = getattr(bn, "drop", None), getattr(bn, "act", None)
    if type(bn).__name__ == "BatchNormAct2d" and isinstance(drop, nn.Module) and isinstance(act, nn.Module):
        return nn.Sequential(drop, act)  # timm's BatchNormAct2d: batch_norm -> drop -> act
    return None


def _flat_outputs(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, list | tuple):
        return [t for o in out for t in _flat_outputs(o)]
    return []


def _names_of(model: nn.Module) -> dict[int, list[str]]:
    names: dict[int, list[str]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        if name:
            names.setdefault(id(module), []).append(name)
    return names


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def _find_pairs(model: nn.Module, example_input: torch.Tensor) -> tuple[list[tuple[nn.Module, nn.Module]], list]:
    produced: dict[int, tuple[nn.Module, torch.Tensor]] = {}
    calls: Counter = Counter()
    consumers: Counter = Counter()
    pairs: list[tuple[nn.Module, nn.Module]] = []

    def after_producer(module, args, output):
        calls[id(module)] += 1
        if isinstance(output, torch.Tensor):
            produced[id(output)] = (module, output)  # keeping the tensor keeps its id unique during the pass

    def before_bn(module, args):
        calls[id(module)] += 1
        x = args[0] if args else None
        hit = produced.get(id(x)) if isinstance(x, torch.Tensor) else None
        if hit is not None and hit[1] is x:
            consumers[id(hit[0])] += 1
            pairs.append((hit[0], module))

    handles = []
    for module in model.modules():
        if _is_weight_linear(module):
            handles.append(module.register_forward_hook(after_producer))
        elif isinstance(module, _BatchNorm):
            handles.append(module.register_forward_pre_hook(before_bn))
    try:
        with torch.no_grad():
            reference = model(example_input)
    finally:
        for h in handles:
            h.remove()
    names = _names_of(model)
    kept, skipped = [], []
    for producer, bn in pairs:
        p_name, b_name = names[id(producer)][0], names[id(bn)][0]
        reason = None
        if calls[id(producer)] != 1 or calls[id(bn)] != 1 or consumers[id(producer)] != 1:
            reason = "layer is used more than once in the forward pass"
        elif bn.running_mean is None or bn.running_var is None:
            reason = "batch norm has no running statistics"
        elif _bn_replacement(bn) is None:
            reason = f"{type(bn).__name__} is not a plain batch norm"
        elif isinstance(producer, nn.Linear) and bn.num_features != producer.out_features:
            reason = "linear output features do not match the batch norm"
        elif isinstance(producer, nn.modules.conv._ConvNd) and bn.num_features != producer.out_channels:
            reason = "conv output channels do not match the batch norm"
        if reason:
            skipped.append((p_name, b_name, reason))
        else:
            kept.append((producer, bn))
    return kept, skipped, reference


def _fold(model: nn.Module, producer: nn.Module, bn: nn.Module, names: dict[int, list[str]]) -> list:
    """Fold one pair; returns the undo list ``[(name, original module), ...]``."""
    fuse = fuse_linear_bn_eval if isinstance(producer, nn.Linear) else fuse_conv_bn_eval
    fused = fuse(producer, bn)
    undo = []
    for name in names[id(producer)]:
        undo.append((name, producer))
        _set_module(model, name, fused)
    replacement = _bn_replacement(bn)
    for name in names[id(bn)]:
        undo.append((name, bn))
        _set_module(model, name, replacement)
    return undo


def _max_diff(a, b) -> float:
    fa, fb = _flat_outputs(a), _flat_outputs(b)
    if len(fa) != len(fb) or any(x.shape != y.shape for x, y in zip(fa, fb)):
        return float("inf")
    return max((float((x.float() - y.float()).abs().max()) for x, y in zip(fa, fb) if x.numel()), default=0.0)


def _scale(out) -> float:
    return max((float(t.float().abs().max()) for t in _flat_outputs(out) if t.numel()), default=0.0)


def fuse_batchnorm(
    model: nn.Module,
    example_input: torch.Tensor,
    *,
    rtol: float = 1e-3,
    reparameterize: bool = True,
) -> FuseResult:
    """Fold every batch norm that directly follows a conv or linear layer into it, in place (inference only).

    The model is put in eval mode. Each folded batch norm is replaced by ``nn.Identity`` (or, for timm's
    ``BatchNormAct2d``, by its dropout and activation). Models with their own re-parameterization (RepVGG,
    MobileOne, FastViT, ...) are first converted with ``timm.utils.reparameterize_model``.

    Args:
        model: The model to fuse (modified in place).
        example_input: A batch the model accepts (e.g. ``torch.randn(2, 3, 224, 224)``); used to trace the data flow
            and to check the result.
        rtol: Allowed output change relative to the largest output magnitude; pairs whose folding changes the output
            more are left unfused.
        reparameterize: Apply timm's re-parameterization first.

    Returns:
        A :class:`FuseResult` naming the fused and skipped pairs.
    """
    model.eval()
    if reparameterize:
        from timm.utils import reparameterize_model

        reparameterize_model(model, inplace=True)
    pairs, skipped, reference = _find_pairs(model, example_input)
    names = _names_of(model)
    tolerance = rtol * max(_scale(reference), 1.0)
    fused: list[tuple[str, str]] = []
    undo_all: list = []
    for producer, bn in pairs:
        undo_all.append((producer, bn, _fold(model, producer, bn, names)))
    with torch.no_grad():
        diff = _max_diff(reference, model(example_input)) if pairs else 0.0
    if diff > tolerance:
        # Some pair was not a plain conv -> bn chain (e.g. the conv output is also used elsewhere): retry one by one.
        for _, _, undo in reversed(undo_all):
            for name, module in reversed(undo):
                _set_module(model, name, module)
        undo_all = []
        for producer, bn in pairs:
            undo = _fold(model, producer, bn, names)
            with torch.no_grad():
                step_diff = _max_diff(reference, model(example_input))
            if step_diff > tolerance:
                for name, module in reversed(undo):
                    _set_module(model, name, module)
                skipped.append((names[id(producer)][0], names[id(bn)][0], "folding changed the output"))
            else:
                undo_all.append((producer, bn, undo))
        with torch.no_grad():
            diff = _max_diff(reference, model(example_input))
    fused = [(names[id(p)][0], names[id(b)][0]) for p, b, _ in undo_all]
    remaining = sum(1 for m in model.modules() if isinstance(m, _BatchNorm))
    return FuseResult(fused=fused, skipped=skipped, remaining_batchnorms=remaining, max_abs_diff=diff)
