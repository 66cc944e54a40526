"""miil-in21k: "ImageNet-21K Pretraining for the Masses" (Ridnik et al., NeurIPS 2021, arXiv 2104.10972).

- ``SemanticTree`` / ``packaged_tree``: the WordNet class tree restricted to the dataset's classes; fall11 (11,221
  classes) and winter21 (10,450) ship with the package; read / write the original ``imagenet21k_miil_tree.pth``.
- ``SemanticHierarchy``: the softmax levels, the ``[C, L]`` target table and the level weights.
- ``SemanticSoftmaxLoss``, ``SemanticKDLoss``, ``SemanticAccuracyMeter``, ``hierarchical_predict``.
- ``preprocess_imagenet21k``: small-class removal, validation split, resize, count check.
- ``RECIPES`` and ``miil in21k train | validate | infer | preprocess | tree``.
"""

import importlib.metadata

from .hierarchy import SemanticHierarchy
from .inference import HierarchicalPrediction, hierarchical_predict
from .kd import SemanticKDLoss, semantic_kd_loss, teacher_confidence
from .loss import SemanticSoftmaxLoss, semantic_softmax_loss
from .metrics import SemanticAccuracyMeter, semantic_accuracy
from .models import LoadReport, convert_original_checkpoint, create_in21k_model, load_matching_weights
from .preprocess import PUBLISHED_COUNTS, plan_split, preprocess_imagenet21k, resize_image, scan_class_folders
from .recipes import RECIPES, SemanticPretrainRecipe, TransferRecipe
from .train import SemanticKDStep, build_pretrain_trainer, build_transfer_trainer, install_paper_onecycle
from .tree import VARIANTS, ClassInfo, SemanticTree, load_tree, packaged_tree
from .wordnet import WordNet

__version__ = importlib.metadata.version("miil-in21k")  # written once, in pyproject.toml

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
    "TransferRecipe",
    "WordNet",
    "build_pretrain_trainer",
    "build_transfer_trainer",
    "convert_original_checkpoint",
    "create_in21k_model",
    "hierarchical_predict",
    "install_paper_onecycle",
    "load_matching_weights",
    "load_tree",
    "packaged_tree",
    "plan_split",
    "preprocess_imagenet21k",
    "resize_image",
    "scan_class_folders",
    "semantic_accuracy",
    "semantic_kd_loss",
    "semantic_softmax_loss",
    "teacher_confidence",
]
