"""miil-core: what every miil package shares.

- ``miil.core.backbones``: timm models by name and their features (pooled, maps or ``[B, N, C]`` tokens), the width
  read from what the model returns.
- ``miil.core.layers``: layers several packages share (the CLS-token transformer aggregator of STAM, PETA and EAT).
- ``miil.core.losses``: asymmetric loss (multi- and single-label), knowledge distillation, soft-target CE.
- ``miil.core.metrics``: tie-aware AP/mAP with partial labels, top-k, precision/recall/F1, Spearman; DDP-aware meters.
- ``miil.core.train``: the one training engine (timm optimizers/schedulers, AMP, EMA, DDP, exact resume).
- ``miil.core.data``: MIIL transforms, multi-label CSV and image-folder datasets, unreadable-file policy, real
  embedded data.
- ``miil.core.io``: safe checkpoint loading and the strict key mapping that converters use.
- ``miil.core.config``: recipes (frozen dataclasses) as command-line options.

Names are imported on first use (PEP 562), so ``import miil.core`` (and the ``miil`` command) loads no torch.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import TYPE_CHECKING

from .lazy import lazy_exports

__version__ = importlib.metadata.version("miil-core")  # written once, in pyproject.toml

_EXPORTS = {
    "TokenBackbone": ".backbones",
    "backbone_features": ".backbones",
    "create_backbone": ".backbones",
    "feature_dim": ".backbones",
    "feature_format": ".backbones",
    "feature_width": ".backbones",
    "forward_tokens": ".backbones",
    "prepare_backbone": ".backbones",
    "to_tokens": ".backbones",
    "add_dataclass_arguments": ".config",
    "dataclass_from_args": ".config",
    "pick_recipe": ".config",
    "recipe_to_dict": ".config",
    "KeyMappingError": ".io",
    "UnsafeCheckpointError": ".io",
    "load_checkpoint": ".io",
    "remap_state_dict": ".io",
    "save_safetensors": ".io",
    "AsymmetricLoss": ".losses",
    "AsymmetricLossSingleLabel": ".losses",
    "DistillationLoss": ".losses",
    "SoftTargetCrossEntropy": ".losses",
    "AccuracyMeter": ".metrics",
    "MeanAPMeter": ".metrics",
    "average_precision": ".metrics",
    "mean_average_precision": ".metrics",
    "topk_accuracy": ".metrics",
    "TrainConfig": ".train",
    "Trainer": ".train",
    "TrainResult": ".train",
    "seed_everything": ".train",
}

if TYPE_CHECKING:
    from .backbones import (
        TokenBackbone,
        backbone_features,
        create_backbone,
        feature_dim,
        feature_format,
        feature_width,
        forward_tokens,
        prepare_backbone,
        to_tokens,
    )
    from .config import add_dataclass_arguments, dataclass_from_args, pick_recipe, recipe_to_dict
    from .io import KeyMappingError, UnsafeCheckpointError, load_checkpoint, remap_state_dict, save_safetensors
    from .losses import AsymmetricLoss, AsymmetricLossSingleLabel, DistillationLoss, SoftTargetCrossEntropy
    from .metrics import AccuracyMeter, MeanAPMeter, average_precision, mean_average_precision, topk_accuracy
    from .train import TrainConfig, Trainer, TrainResult, seed_everything


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "AccuracyMeter",
    "AsymmetricLoss",
    "AsymmetricLossSingleLabel",
    "DistillationLoss",
    "KeyMappingError",
    "MeanAPMeter",
    "SoftTargetCrossEntropy",
    "TokenBackbone",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "UnsafeCheckpointError",
    "add_dataclass_arguments",
    "average_precision",
    "backbone_features",
    "create_backbone",
    "dataclass_from_args",
    "feature_dim",
    "feature_format",
    "feature_width",
    "forward_tokens",
    "load_checkpoint",
    "mean_average_precision",
    "pick_recipe",
    "prepare_backbone",
    "recipe_to_dict",
    "remap_state_dict",
    "save_safetensors",
    "seed_everything",
    "to_tokens",
    "topk_accuracy",
]
