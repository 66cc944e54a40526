"""Losses of the Alibaba-MIIL papers: ASL (arXiv 2009.14119), Hinton knowledge distillation, soft-target CE."""

from .asymmetric import AsymmetricLoss, AsymmetricLossSingleLabel
from .distillation import DistillationLoss, SoftTargetCrossEntropy, distillation_loss, soft_target_cross_entropy

__all__ = [
    "AsymmetricLoss",
    "AsymmetricLossSingleLabel",
    "DistillationLoss",
    "SoftTargetCrossEntropy",
    "distillation_loss",
    "soft_target_cross_entropy",
]
