"""miil-usi: "Solving ImageNet: a Unified Scheme for Training any Backbone to Top Results" (USI, arXiv 2204.03475).

One knowledge-distillation recipe trains any timm backbone: a frozen, BN-fused teacher sees the same mixup/cutmix
batch as the student, and the loss is soft-target CE plus 5 x KL to the teacher (:class:`USIDistillationLoss`).
The preset (:data:`USI`, :data:`RECIPES`) is the authors' training configuration, unchanged for every backbone; it
runs on the core training engine (:func:`train_usi`, :func:`build_usi_trainer`). With one recipe for all, models
can be compared on the speed-accuracy plane (:func:`measure_throughput`, :func:`pareto_front`, :func:`write_pareto`).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import TYPE_CHECKING

from miil.core.lazy import lazy_exports

__version__ = importlib.metadata.version("miil-usi")  # written once, in pyproject.toml

# name -> submodule; names are imported on first use (PEP 562), so `import` of the package loads no torch.
_EXPORTS = {
    "convert_checkpoint": ".convert",
    "convert_inplace_abn_tresnet": ".convert",
    "is_inplace_abn_tresnet": ".convert",
    "load_weights": ".convert",
    "dataset_fingerprint": ".data",
    "image_folder": ".data",
    "IndexedDataset": ".data",
    "usi_eval_transform": ".data",
    "usi_train_transform": ".data",
    "KDBatchTransform": ".distill",
    "KDStep": ".distill",
    "fuse_batchnorm": ".fuse",
    "FuseResult": ".fuse",
    "collect_images": ".inference",
    "evaluate_classifier": ".inference",
    "ImageFiles": ".inference",
    "load_classifier": ".inference",
    "LoadedModel": ".inference",
    "predict": ".inference",
    "prepare_for_inference": ".inference",
    "validate": ".inference",
    "usi_kd_loss": ".loss",
    "USIDistillationLoss": ".loss",
    "KDMixup": ".mixup",
    "split_folder": ".layout",
    "mark_front": ".pareto",
    "pareto_front": ".pareto",
    "pareto_table": ".pareto",
    "ParetoPoint": ".pareto",
    "plot_pareto": ".pareto",
    "write_pareto": ".pareto",
    "PAPER_RESULTS": ".recipes",
    "PaperResult": ".recipes",
    "RECIPES": ".recipes",
    "USI": ".recipes",
    "USIRecipe": ".recipes",
    "InputRenormalizer": ".renormalize",
    "model_mean_std": ".renormalize",
    "renormalize": ".renormalize",
    "RepeatedAugSampler": ".sampler",
    "create_teacher": ".teacher",
    "DEFAULT_TEACHER": ".recipes",
    "FrozenTeacher": ".teacher",
    "precompute_teacher_logits": ".teacher_logits",
    "TeacherLogits": ".teacher_logits",
    "measure_throughput": ".throughput",
    "ThroughputResult": ".throughput",
    "build_usi_trainer": ".train",
    "create_student": ".train",
    "train_usi": ".train",
    "usi_datasets": ".train",
    "usi_transforms": ".train",
    "classifier_outputs": ".weights",
    "read_weights": ".weights",
    "RunWeights": ".weights",
}

_SUBMODULES = {
    "convert",
    "data",
    "distill",
    "fuse",
    "inference",
    "layout",
    "loss",
    "mixup",
    "pareto",
    "recipes",
    "renormalize",
    "sampler",
    "teacher",
    "teacher_logits",
    "throughput",
    "train",
    "weights",
}

if TYPE_CHECKING:
    from .convert import convert_checkpoint, convert_inplace_abn_tresnet, is_inplace_abn_tresnet, load_weights
    from .data import IndexedDataset, dataset_fingerprint, image_folder, usi_eval_transform, usi_train_transform
    from .distill import KDBatchTransform, KDStep
    from .fuse import FuseResult, fuse_batchnorm
    from .inference import (
        ImageFiles,
        LoadedModel,
        collect_images,
        evaluate_classifier,
        load_classifier,
        predict,
        prepare_for_inference,
        validate,
    )
    from .layout import split_folder
    from .loss import USIDistillationLoss, usi_kd_loss
    from .mixup import KDMixup
    from .pareto import ParetoPoint, mark_front, pareto_front, pareto_table, plot_pareto, write_pareto
    from .recipes import DEFAULT_TEACHER, PAPER_RESULTS, RECIPES, USI, PaperResult, USIRecipe
    from .renormalize import InputRenormalizer, model_mean_std, renormalize
    from .sampler import RepeatedAugSampler
    from .teacher import FrozenTeacher, create_teacher
    from .teacher_logits import TeacherLogits, precompute_teacher_logits
    from .throughput import ThroughputResult, measure_throughput
    from .train import build_usi_trainer, create_student, train_usi, usi_datasets, usi_transforms
    from .weights import RunWeights, classifier_outputs, read_weights


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES, shadowed=("renormalize",))

__all__ = [
    "DEFAULT_TEACHER",
    "PAPER_RESULTS",
    "RECIPES",
    "USI",
    "FrozenTeacher",
    "FuseResult",
    "ImageFiles",
    "IndexedDataset",
    "InputRenormalizer",
    "KDBatchTransform",
    "KDMixup",
    "KDStep",
    "LoadedModel",
    "PaperResult",
    "ParetoPoint",
    "RepeatedAugSampler",
    "RunWeights",
    "TeacherLogits",
    "ThroughputResult",
    "USIDistillationLoss",
    "USIRecipe",
    "build_usi_trainer",
    "classifier_outputs",
    "collect_images",
    "convert_checkpoint",
    "convert_inplace_abn_tresnet",
    "create_student",
    "create_teacher",
    "dataset_fingerprint",
    "evaluate_classifier",
    "fuse_batchnorm",
    "image_folder",
    "is_inplace_abn_tresnet",
    "load_classifier",
    "load_weights",
    "mark_front",
    "measure_throughput",
    "model_mean_std",
    "pareto_front",
    "pareto_table",
    "plot_pareto",
    "precompute_teacher_logits",
    "predict",
    "prepare_for_inference",
    "read_weights",
    "renormalize",
    "split_folder",
    "train_usi",
    "usi_datasets",
    "usi_eval_transform",
    "usi_kd_loss",
    "usi_train_transform",
    "usi_transforms",
    "validate",
    "write_pareto",
]
