"""miil-diversity: "Diverse ImageNet Models Transfer Better" (Nayman, Golbert, Noy, Zelnik-Manor; arXiv 2204.09134,
WACV 2024).

Transferability of a pretrained model follows its ImageNet accuracy *and* its diversity. This package measures
diversity for any timm model (:func:`measure_diversity`: filter diversity, feature effective rank, feature
correlation, per layer and overall, streamed over a dataset), pretrains models that are diverse and accurate
(:func:`pretrain`: a self-supervised initialisation, then USI's supervised KD recipe from :mod:`miil.usi`, with
diversity logged every epoch), and compares models downstream with fixed hyperparameters (:func:`transfer`: linear
probe or fine-tuning, top-1 or mAP) next to their accuracy and diversity (:func:`report_table`, :func:`plot_transfer`).
"""

import importlib.metadata

from .convert import classifier_keys, convert_ssl_state_dict, load_ssl_weights
from .feature_stats import (
    FeatureMoments,
    effective_rank,
    effective_rank_from_covariance,
    mean_feature_correlation,
    pool_features,
)
from .filter_diversity import classifier_module, filter_diversity, filter_layers, model_filter_diversity
from .measure import (
    FEATURE_METRICS,
    PENULTIMATE,
    WEIGHT_METRICS,
    DiversityReport,
    FeatureCollector,
    feature_metrics,
    measure_diversity,
    register_feature_metric,
    register_weight_metric,
    weight_metrics,
)
from .penultimate import logits_and_features, penultimate_features, replace_classifier
from .pretrain import (
    DiversityTracker,
    PretrainResult,
    pretrain,
    pretrain_datasets,
    pretrain_folders,
    ssl_config,
    ssl_transform,
)
from .recipes import FINE_TUNE, LINEAR_PROBE, RECIPES, TRANSFER_RECIPES, DiversityRecipe, TransferRecipe
from .report import correlations, load_records, plot_transfer, report_table
from .ssl import ContrastiveStep, NTXentLoss, ProjectionHead, SSLModel, TwoViewDataset, nt_xent_loss, train_ssl
from .transfer import (
    TransferResult,
    extract_features,
    fine_tune,
    linear_probe,
    load_transfer_dataset,
    transfer,
    transfer_datasets,
    transfer_transforms,
)

__version__ = importlib.metadata.version("miil-diversity")  # written once, in pyproject.toml

__all__ = [
    "FEATURE_METRICS",
    "FINE_TUNE",
    "LINEAR_PROBE",
    "PENULTIMATE",
    "RECIPES",
    "TRANSFER_RECIPES",
    "WEIGHT_METRICS",
    "ContrastiveStep",
    "DiversityRecipe",
    "DiversityReport",
    "DiversityTracker",
    "FeatureCollector",
    "FeatureMoments",
    "NTXentLoss",
    "PretrainResult",
    "ProjectionHead",
    "SSLModel",
    "TransferRecipe",
    "TransferResult",
    "TwoViewDataset",
    "classifier_keys",
    "classifier_module",
    "convert_ssl_state_dict",
    "correlations",
    "effective_rank",
    "effective_rank_from_covariance",
    "extract_features",
    "feature_metrics",
    "filter_diversity",
    "filter_layers",
    "fine_tune",
    "linear_probe",
    "load_records",
    "load_ssl_weights",
    "load_transfer_dataset",
    "logits_and_features",
    "mean_feature_correlation",
    "measure_diversity",
    "model_filter_diversity",
    "nt_xent_loss",
    "penultimate_features",
    "plot_transfer",
    "pool_features",
    "pretrain",
    "pretrain_datasets",
    "pretrain_folders",
    "register_feature_metric",
    "register_weight_metric",
    "replace_classifier",
    "report_table",
    "ssl_config",
    "ssl_transform",
    "train_ssl",
    "transfer",
    "transfer_datasets",
    "transfer_transforms",
    "weight_metrics",
]
