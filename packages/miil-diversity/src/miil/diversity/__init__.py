"""miil-diversity: "Diverse ImageNet Models Transfer Better" (Nayman, Golbert, Noy, Zelnik-Manor; arXiv 2204.09134,
WACV 2024).

Transferability of a pretrained model follows its ImageNet accuracy *and* its diversity. This package measures
diversity for any timm model (:func:`measure_diversity`: filter diversity, feature effective rank, feature
correlation, per layer and overall, streamed over a dataset), pretrains models that are diverse and accurate
(:func:`pretrain`: a self-supervised initialisation, then USI's supervised KD recipe from :mod:`miil.usi`, with
diversity logged every epoch), and compares models downstream with fixed hyperparameters (:func:`transfer`: linear
probe or fine-tuning, top-1 or mAP) next to their accuracy and diversity (:func:`report_table`, :func:`plot_transfer`).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import TYPE_CHECKING

from miil.core.lazy import lazy_exports

__version__ = importlib.metadata.version("miil-diversity")  # written once, in pyproject.toml

# name -> submodule; names are imported on first use (PEP 562), so `import` of the package loads no torch.
_EXPORTS = {
    "classifier_keys": ".convert",
    "convert_ssl_checkpoint": ".convert",
    "convert_ssl_state_dict": ".convert",
    "load_ssl_weights": ".convert",
    "read_ssl_state": ".convert",
    "effective_rank": ".feature_stats",
    "effective_rank_from_covariance": ".feature_stats",
    "FeatureMoments": ".feature_stats",
    "mean_feature_correlation": ".feature_stats",
    "pool_features": ".feature_stats",
    "classifier_module": ".filter_diversity",
    "filter_diversity": ".filter_diversity",
    "filter_layers": ".filter_diversity",
    "model_filter_diversity": ".filter_diversity",
    "DiversityReport": ".measure",
    "FEATURE_METRICS": ".measure",
    "feature_metrics": ".measure",
    "FeatureCollector": ".measure",
    "measure_diversity": ".measure",
    "PENULTIMATE": ".measure",
    "register_feature_metric": ".measure",
    "register_weight_metric": ".measure",
    "WEIGHT_METRICS": ".measure",
    "weight_metrics": ".measure",
    "load_pretrained": ".models",
    "PretrainedModel": ".models",
    "run_weights": ".models",
    "logits_and_features": ".penultimate",
    "penultimate_features": ".penultimate",
    "replace_classifier": ".penultimate",
    "check_init": ".pretrain",
    "DiversityTracker": ".pretrain",
    "pretrain": ".pretrain",
    "pretrain_datasets": ".pretrain",
    "pretrain_folders": ".pretrain",
    "PretrainResult": ".pretrain",
    "ssl_config": ".pretrain",
    "ssl_transform": ".pretrain",
    "DiversityRecipe": ".recipes",
    "INITS": ".recipes",
    "FINE_TUNE": ".recipes",
    "LINEAR_PROBE": ".recipes",
    "RECIPES": ".recipes",
    "TRANSFER_RECIPES": ".recipes",
    "TransferRecipe": ".recipes",
    "correlations": ".report",
    "load_records": ".report",
    "plot_transfer": ".report",
    "report_table": ".report",
    "ContrastiveStep": ".ssl",
    "nt_xent_loss": ".ssl",
    "NTXentLoss": ".ssl",
    "ProjectionHead": ".ssl",
    "SSLModel": ".ssl",
    "train_ssl": ".ssl",
    "TwoViewDataset": ".ssl",
    "extract_features": ".transfer",
    "fine_tune": ".transfer",
    "linear_probe": ".transfer",
    "load_transfer_dataset": ".transfer",
    "transfer": ".transfer",
    "transfer_datasets": ".transfer",
    "transfer_transforms": ".transfer",
    "TransferResult": ".transfer",
}

_SUBMODULES = {
    "convert",
    "feature_stats",
    "filter_diversity",
    "measure",
    "models",
    "penultimate",
    "pretrain",
    "recipes",
    "report",
    "ssl",
    "transfer",
}

if TYPE_CHECKING:
    from .convert import (
        classifier_keys,
        convert_ssl_checkpoint,
        convert_ssl_state_dict,
        load_ssl_weights,
        read_ssl_state,
    )
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
    from .models import PretrainedModel, load_pretrained, run_weights
    from .penultimate import logits_and_features, penultimate_features, replace_classifier
    from .pretrain import (
        DiversityTracker,
        PretrainResult,
        check_init,
        pretrain,
        pretrain_datasets,
        pretrain_folders,
        ssl_config,
        ssl_transform,
    )
    from .recipes import FINE_TUNE, INITS, LINEAR_PROBE, RECIPES, TRANSFER_RECIPES, DiversityRecipe, TransferRecipe
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


__getattr__, __dir__ = lazy_exports(
    __name__, _EXPORTS, _SUBMODULES, shadowed={"filter_diversity", "pretrain", "transfer"}
)

__all__ = [
    "FEATURE_METRICS",
    "FINE_TUNE",
    "INITS",
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
    "PretrainedModel",
    "ProjectionHead",
    "SSLModel",
    "TransferRecipe",
    "TransferResult",
    "TwoViewDataset",
    "check_init",
    "classifier_keys",
    "classifier_module",
    "convert_ssl_checkpoint",
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
    "load_pretrained",
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
    "read_ssl_state",
    "register_feature_metric",
    "register_weight_metric",
    "replace_classifier",
    "report_table",
    "run_weights",
    "ssl_config",
    "ssl_transform",
    "train_ssl",
    "transfer",
    "transfer_datasets",
    "transfer_transforms",
    "weight_metrics",
]
