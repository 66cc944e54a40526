"""Models for ImageNet-21K-P: timm models initialised from ImageNet-1K weights, and the original checkpoints.

Paper: "ImageNet-21K Pretraining for the Masses", Ridnik et al. (arXiv 2104.10972), training setup: 21K pretraining
starts from ImageNet-1K weights, loading every tensor whose shape matches and skipping the rest (the 1K head); the
original ``load_model_weights`` prints what it skipped, :func:`load_matching_weights` returns it.

Original checkpoints: the released ``*_miil_21k.pth`` files hold ``{"state_dict": ...}`` in timm's key layout,
except TResNet, which was built with InplaceABN; :func:`convert_original_checkpoint` maps them onto current timm
models strictly (timm's own TResNet filter renames the keys and turns the InplaceABN weights into BatchNorm weights,
``|w| + 1e-5``), and fails listing every key that does not fit.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from miil.core.backbones import create_backbone
from miil.core.errors import UserError
from miil.core.io import extract_state_dict, fill_missing_bn_counters, load_checkpoint, remap_state_dict

__all__ = [
    "LoadReport",
    "convert_original_checkpoint",
    "create_in21k_model",
    "load_matching_weights",
]


@dataclass
class LoadReport:
    """What :func:`load_matching_weights` did.

    Attributes:
        loaded: Keys copied into the model.
        shape_mismatch: ``(key, checkpoint shape, model shape)`` of the skipped tensors (e.g. the 1K head).
        missing: Model keys absent from the checkpoint (left at their initial values).
        unexpected: Checkpoint keys the model does not have.
    """

    loaded: list[str] = field(default_factory=list)
    shape_mismatch: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def summary(self) -> str:
        skipped = ", ".join(k for k, _, _ in self.shape_mismatch[:6])
        return (
            f"loaded {len(self.loaded)} tensors; skipped {len(self.shape_mismatch)} with other shapes"
            f"{' (' + skipped + ')' if skipped else ''}; {len(self.missing)} missing; {len(self.unexpected)} unexpected"
        )


def load_matching_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> LoadReport:
    """Copy every checkpoint tensor whose key and shape match the model; report the rest (no error).

    Args:
        model: The model to initialise.
        state_dict: Weights, e.g. of the same architecture trained on ImageNet-1K.
    """
    own = model.state_dict()
    report = LoadReport()
    usable = {}
    for key, value in state_dict.items():
        if key not in own:
            report.unexpected.append(key)
        elif tuple(value.shape) != tuple(own[key].shape):
            report.shape_mismatch.append((key, tuple(value.shape), tuple(own[key].shape)))
        else:
            usable[key] = value
            report.loaded.append(key)
    report.missing = [k for k in own if k not in usable and not k.endswith("num_batches_tracked")]
    model.load_state_dict(usable, strict=False)
    return report


def create_in21k_model(
    name: str,
    *,
    num_classes: int,
    pretrained: bool = False,
    init_checkpoint: str | os.PathLike | None = None,
    **timm_kwargs: Any,
) -> tuple[nn.Module, LoadReport | None]:
    """A timm model with a ``num_classes`` head, optionally initialised from 1K weights (mismatched heads skipped).

    Args:
        name: timm model name (``"tresnet_m"``).
        num_classes: Classes of the tree (11,221 for fall11).
        pretrained: timm's pretrained weights (from the Hugging Face hub; timm re-initialises a head of another
            size).
        init_checkpoint: Local weights to initialise from instead, loaded with :func:`load_matching_weights`.
        timm_kwargs: More ``timm.create_model`` arguments (``drop_path_rate``...).
    """
    model = create_backbone(
        name, pretrained=pretrained and init_checkpoint is None, num_classes=num_classes, **timm_kwargs
    )
    report = None
    if init_checkpoint is not None:
        state = extract_state_dict(load_checkpoint(init_checkpoint))
        report = load_matching_weights(model, _filtered(state, model))
        if not report.loaded:
            raise UserError(
                f"no tensor of --init-checkpoint {init_checkpoint} fits {name}: {report.summary()}; is it a "
                "checkpoint of this model?"
            )
    return model, report


def _family_filter(model: nn.Module):
    """timm's checkpoint filter for the model's family (``timm.models.<family>.checkpoint_filter_fn``), if any."""
    module_name = type(model).__module__
    if not module_name.startswith("timm.models."):
        return None
    module = importlib.import_module(module_name)
    return getattr(module, "checkpoint_filter_fn", None)


def _filtered(state: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    if type(model).__name__ == "TResNet":
        filt = _family_filter(model)
        if filt is not None:
            return dict(filt(dict(state), model))
    return dict(state)


def convert_original_checkpoint(
    checkpoint: str | os.PathLike | Mapping[str, Any], model: nn.Module
) -> dict[str, torch.Tensor]:
    """Map a released ImageNet-21K-P checkpoint (``tresnet_m_miil_21k.pth`` ...) onto a timm model, strictly.

    Args:
        checkpoint: The file, or its loaded content (``{"state_dict": ...}`` or a bare state dict).
        model: The timm model built with the checkpoint's architecture and ``num_classes``.

    Returns:
        A state dict that loads into ``model`` with ``strict=True``.
    """
    obj = load_checkpoint(checkpoint) if isinstance(checkpoint, str | os.PathLike) else checkpoint
    state = _filtered(extract_state_dict(obj), model)
    # Old checkpoints lack BatchNorm's num_batches_tracked (taken as 0; they change no output).
    return remap_state_dict(fill_missing_bn_counters(state, model), [(r"(.*)", r"\1")], expected=model)
