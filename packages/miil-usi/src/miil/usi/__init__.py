"""miil-usi: "Solving ImageNet: a Unified Scheme for Training any Backbone to Top Results" (USI, arXiv 2204.03475).

One knowledge-distillation recipe trains any timm backbone: a frozen, BN-fused teacher sees the same mixup/cutmix
batch as the student, and the loss is soft-target CE plus 5 x KL to the teacher (:class:`USIDistillationLoss`).
The preset (:data:`USI`, :data:`RECIPES`) is the authors' training configuration, unchanged for every backbone; it
runs on the core training engine (:func:`train_usi`, :func:`build_usi_trainer`). With one recipe for all, models
can be compared on the speed-accuracy plane (:func:`measure_throughput`, :func:`pareto_front`, :func:`write_pareto`).
"""

import importlib.metadata

from .convert import convert_inplace_abn_tresnet, is_inplace_abn_tresnet, load_weights
from .data import IndexedDataset, dataset_fingerprint, image_folder, usi_eval_transform, usi_train_transform
from .distill import KDBatchTransform, KDStep
from .fuse import FuseResult, fuse_batchnorm
from .inference import LoadedModel, collect_images, load_classifier, predict, prepare_for_inference, validate
from .loss import USIDistillationLoss, usi_kd_loss
from .mixup import KDMixup
from .pareto import ParetoPoint, mark_front, pareto_front, pareto_table, plot_pareto, write_pareto
from .recipes import PAPER_RESULTS, RECIPES, USI, PaperResult, USIRecipe
from .renormalize import InputRenormalizer, model_mean_std, renormalize
from .sampler import RepeatedAugSampler
from .teacher import DEFAULT_TEACHER, FrozenTeacher, create_teacher
from .teacher_logits import TeacherLogits, precompute_teacher_logits
from .throughput import ThroughputResult, measure_throughput
from .train import build_usi_trainer, create_student, train_usi, usi_transforms

__version__ = importlib.metadata.version("miil-usi")  # written once, in pyproject.toml

__all__ = [
    "DEFAULT_TEACHER",
    "PAPER_RESULTS",
    "RECIPES",
    "USI",
    "FrozenTeacher",
    "FuseResult",
    "IndexedDataset",
    "InputRenormalizer",
    "KDBatchTransform",
    "KDMixup",
    "KDStep",
    "LoadedModel",
    "PaperResult",
    "ParetoPoint",
    "RepeatedAugSampler",
    "TeacherLogits",
    "ThroughputResult",
    "USIDistillationLoss",
    "USIRecipe",
    "build_usi_trainer",
    "collect_images",
    "convert_inplace_abn_tresnet",
    "create_student",
    "create_teacher",
    "dataset_fingerprint",
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
    "renormalize",
    "train_usi",
    "usi_eval_transform",
    "usi_kd_loss",
    "usi_train_transform",
    "usi_transforms",
    "validate",
    "write_pareto",
]
