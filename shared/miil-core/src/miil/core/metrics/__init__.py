"""Evaluation metrics: AP / mAP (sklearn-exact, arXiv 2009.14119 protocol), top-k accuracy, multi-label PRF,
Spearman correlation and DDP-aware meters."""

from .average_precision import average_precision, mean_average_precision
from .classification import topk_accuracy
from .correlation import spearman
from .meters import AccuracyMeter, MeanAPMeter, Meter, StoringMeter
from .multilabel import multilabel_prf

__all__ = [
    "AccuracyMeter",
    "MeanAPMeter",
    "Meter",
    "StoringMeter",
    "average_precision",
    "mean_average_precision",
    "multilabel_prf",
    "spearman",
    "topk_accuracy",
]
