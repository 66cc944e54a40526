"""miil-in21k: "ImageNet-21K Pretraining for the Masses" (Ridnik et al., NeurIPS 2021, arXiv 2104.10972).

- ``SemanticTree`` / ``packaged_tree``: the WordNet class tree restricted to the dataset's classes; fall11 (11,221
  classes) and winter21 (10,450) ship with the package; read / write the original ``imagenet21k_miil_tree.pth``.
- ``SemanticHierarchy``: the softmax levels, the ``[C, L]`` target table and the level weights.
- ``SemanticSoftmaxLoss``, ``SemanticKDLoss``, ``SemanticAccuracyMeter``, ``hierarchical_predict``.
- ``preprocess_imagenet21k``: small-class removal, validation split, resize, count check.
- ``load_trained_model``, ``validate_model``, ``predict_images``: validation and inference on miil-core's loop.
- ``RECIPES`` and ``miil in21k recipes | train | validate | infer | convert | preprocess | tree``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import TYPE_CHECKING

from miil.core.lazy import lazy_exports

__version__ = importlib.metadata.version("miil-in21k")  # written once, in pyproject.toml

# name -> submodule; names are imported on first use (PEP 562), so `import` of the package loads no torch.
_EXPORTS = {
    "load_trained_model": ".evaluation",
    "predict_images": ".evaluation",
    "TrainedModel": ".evaluation",
    "validate_model": ".evaluation",
    "SemanticHierarchy": ".hierarchy",
    "hierarchical_predict": ".inference",
    "HierarchicalPrediction": ".inference",
    "semantic_kd_loss": ".kd",
    "SemanticKDLoss": ".kd",
    "teacher_confidence": ".kd",
    "semantic_softmax_loss": ".loss",
    "SemanticSoftmaxLoss": ".loss",
    "semantic_accuracy": ".metrics",
    "SemanticAccuracyMeter": ".metrics",
    "convert_original_checkpoint": ".models",
    "create_in21k_model": ".models",
    "load_matching_weights": ".models",
    "LoadReport": ".models",
    "plan_split": ".preprocess",
    "preprocess_imagenet21k": ".preprocess",
    "PUBLISHED_COUNTS": ".preprocess",
    "resize_image": ".preprocess",
    "scan_class_folders": ".preprocess",
    "RECIPES": ".recipes",
    "SemanticPretrainRecipe": ".recipes",
    "TransferRecipe": ".recipes",
    "build_pretrain_trainer": ".train",
    "build_transfer_trainer": ".train",
    "SemanticKDStep": ".train",
    "ClassInfo": ".tree",
    "load_tree": ".tree",
    "packaged_tree": ".tree",
    "SemanticTree": ".tree",
    "VARIANTS": ".tree",
    "WordNet": ".wordnet",
}

_SUBMODULES = {
    "evaluation",
    "hierarchy",
    "inference",
    "kd",
    "loss",
    "metrics",
    "models",
    "preprocess",
    "recipes",
    "train",
    "tree",
    "wordnet",
}

if TYPE_CHECKING:
    from .evaluation import TrainedModel, load_trained_model, predict_images, validate_model
    from .hierarchy import SemanticHierarchy
    from .inference import HierarchicalPrediction, hierarchical_predict
    from .kd import SemanticKDLoss, semantic_kd_loss, teacher_confidence
    from .loss import SemanticSoftmaxLoss, semantic_softmax_loss
    from .metrics import SemanticAccuracyMeter, semantic_accuracy
    from .models import LoadReport, convert_original_checkpoint, create_in21k_model, load_matching_weights
    from .preprocess import PUBLISHED_COUNTS, plan_split, preprocess_imagenet21k, resize_image, scan_class_folders
    from .recipes import RECIPES, SemanticPretrainRecipe, TransferRecipe
    from .train import SemanticKDStep, build_pretrain_trainer, build_transfer_trainer
    from .tree import VARIANTS, ClassInfo, SemanticTree, load_tree, packaged_tree
    from .wordnet import WordNet


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)

__all__ = [
    "PUBLISHED_COUNTS",
    "RECIPES",
    "VARIANTS",
    "ClassInfo",
    "HierarchicalPrediction",
    "LoadReport",
    "SemanticAccuracyMeter",
    "SemanticHierarchy",
    "SemanticKDStep",
    "SemanticKDLoss",
    "SemanticPretrainRecipe",
    "SemanticSoftmaxLoss",
    "SemanticTree",
    "TrainedModel",
    "TransferRecipe",
    "WordNet",
    "build_pretrain_trainer",
    "build_transfer_trainer",
    "convert_original_checkpoint",
    "create_in21k_model",
    "hierarchical_predict",
    "load_matching_weights",
    "load_trained_model",
    "load_tree",
    "packaged_tree",
    "plan_split",
    "predict_images",
    "preprocess_imagenet21k",
    "resize_image",
    "scan_class_folders",
    "semantic_accuracy",
    "semantic_kd_loss",
    "semantic_softmax_loss",
    "teacher_confidence",
    "validate_model",
]
