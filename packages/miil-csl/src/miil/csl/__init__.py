"""miil-csl: multi-label classification with partial annotations, the class-aware selective loss (CSL).

Paper: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss", Ben-Baruch et al.,
CVPR 2022 (arXiv 2110.10955). Reference code: https://github.com/Alibaba-MIIL/PartialLabelingCSL.

- :class:`PartialSelectiveLoss`: the Negative / Ignore / Ignore-normalised / Selective modes with the partial
  asymmetric loss (labels 1 / 0 / -1).
- :class:`ClassPrior`, :class:`ClassPriorEstimator`, :func:`estimate_prior`: the class prior from a temporary
  ``ignore`` model, saved and loaded by class name.
- :func:`simulate_fpc`, :func:`simulate_rps`: seeded partial-annotation simulations.
- Datasets: LVIS (federated); OpenImages V6 (shared with miil-mldecoder, re-exported), COCO-2014, the digit mosaics
  and the CSV format come from ``miil.core.data``; :mod:`miil.csl.miniature` writes miniature LVIS copies (and
  re-exports ``miil.core.miniature.make_openimages``).
- :func:`partial_average_precision`, :class:`PartialMAPMeter`: partial-label mAP.
- :data:`RECIPES`, :func:`train_csl`: the paper's settings and the two-stage training pipeline (``miil csl train``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import TYPE_CHECKING

from miil.core.lazy import lazy_exports

__version__ = importlib.metadata.version("miil-csl")  # written once, in pyproject.toml

# name -> submodule; names are imported on first use (PEP 562), so `import` of the package loads no torch.
_EXPORTS = {
    "convert_original_checkpoint": ".convert",
    "load_original_checkpoint": ".convert",
    "LVISFederatedDataset": ".data",
    "MultiLabelImageDataset": ".data",
    "OpenImagesDataset": ".data",
    "read_lvis_labels": ".data",
    "read_openimages_classes": ".data",
    "read_openimages_labels": ".data",
    "SparseLabels": ".data",
    "KERNELS": ".loss",
    "partial_label_weights": ".loss",
    "PARTIAL_LOSS_MODES": ".loss",
    "PartialSelectiveLoss": ".loss",
    "resolve_partial_loss_mode": ".loss",
    "partial_average_precision": ".metrics",
    "partial_mean_average_precision": ".metrics",
    "PartialAP": ".metrics",
    "PartialMAPMeter": ".metrics",
    "BottleneckHead": ".model",
    "create_csl_model": ".model",
    "MosaicCNN": ".model",
    "MultiLabelClassifier": ".model",
    "CSLRunResult": ".pipeline",
    "DataSpec": ".pipeline",
    "load_run_model": ".pipeline",
    "train_csl": ".pipeline",
    "ClassPrior": ".prior",
    "ClassPriorEstimator": ".prior",
    "estimate_prior": ".prior",
    "load_prior": ".prior",
    "CSLConfig": ".recipes",
    "get_recipe": ".recipes",
    "RECIPES": ".recipes",
    "apply_partial_simulation": ".simulation",
    "simulate_fpc": ".simulation",
    "simulate_partial_labels": ".simulation",
    "simulate_rps": ".simulation",
    "SimulationSummary": ".simulation",
}

_SUBMODULES = {
    "convert",
    "data",
    "loss",
    "metrics",
    "model",
    "pipeline",
    "prior",
    "recipes",
    "simulation",
}

if TYPE_CHECKING:
    from .convert import convert_original_checkpoint, load_original_checkpoint
    from .data import (
        LVISFederatedDataset,
        MultiLabelImageDataset,
        OpenImagesDataset,
        SparseLabels,
        read_lvis_labels,
        read_openimages_classes,
        read_openimages_labels,
    )
    from .loss import (
        KERNELS,
        PARTIAL_LOSS_MODES,
        PartialSelectiveLoss,
        partial_label_weights,
        resolve_partial_loss_mode,
    )
    from .metrics import PartialAP, PartialMAPMeter, partial_average_precision, partial_mean_average_precision
    from .model import BottleneckHead, MosaicCNN, MultiLabelClassifier, create_csl_model
    from .pipeline import CSLRunResult, DataSpec, load_run_model, train_csl
    from .prior import ClassPrior, ClassPriorEstimator, estimate_prior, load_prior
    from .recipes import RECIPES, CSLConfig, get_recipe
    from .simulation import (
        SimulationSummary,
        apply_partial_simulation,
        simulate_fpc,
        simulate_partial_labels,
        simulate_rps,
    )


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)

__all__ = [
    "KERNELS",
    "PARTIAL_LOSS_MODES",
    "RECIPES",
    "BottleneckHead",
    "CSLConfig",
    "CSLRunResult",
    "ClassPrior",
    "ClassPriorEstimator",
    "DataSpec",
    "LVISFederatedDataset",
    "MosaicCNN",
    "MultiLabelClassifier",
    "MultiLabelImageDataset",
    "OpenImagesDataset",
    "PartialAP",
    "PartialMAPMeter",
    "PartialSelectiveLoss",
    "SimulationSummary",
    "SparseLabels",
    "apply_partial_simulation",
    "convert_original_checkpoint",
    "create_csl_model",
    "estimate_prior",
    "get_recipe",
    "load_original_checkpoint",
    "load_prior",
    "load_run_model",
    "partial_average_precision",
    "partial_label_weights",
    "resolve_partial_loss_mode",
    "partial_mean_average_precision",
    "read_lvis_labels",
    "read_openimages_classes",
    "read_openimages_labels",
    "simulate_fpc",
    "simulate_partial_labels",
    "simulate_rps",
    "train_csl",
]
