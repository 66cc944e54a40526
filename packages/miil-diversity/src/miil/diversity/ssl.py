"""The self-supervised stage: a SimCLR-style contrastive objective (NT-Xent) on two augmented views of each image.

Paper: "Diverse ImageNet Models Transfer Better" (arXiv 2204.09134 / WACV 2024) starts the supervised pretraining from
a self-supervised model, because self-supervised models are the diverse ones. Which self-supervised method and
checkpoints the paper used could not be retrieved (see the README); for real models start from a released
self-supervised checkpoint (e.g. timm's DINO weights, :mod:`miil.diversity.convert`). This module trains one from
scratch with the normalized-temperature cross entropy of SimCLR (Chen et al., ICML 2020, arXiv 2002.05709, Eq. 1): for
``2N`` embeddings of ``N`` image pairs, ``l(i, j) = -log exp(sim(z_i, z_j) / t) / sum_{k != i} exp(sim(z_i, z_k) /
t)``, averaged over all ``2N`` anchors, with cosine similarity ``sim``. Labels are never used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset

from miil.core.backbones import feature_width
from miil.core.data import Skipped
from miil.core.train import TrainConfig, Trainer, TrainResult

from .filter_diversity import classifier_module
from .penultimate import penultimate_features

__all__ = ["ContrastiveStep", "NTXentLoss", "ProjectionHead", "SSLModel", "TwoViewDataset", "nt_xent_loss", "train_ssl"]


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, *, temperature: float = 0.2) -> torch.Tensor:
    """SimCLR's NT-Xent loss of two ``[N, D]`` embedding batches whose rows ``i`` are views of the same image.

    Args:
        z1: Embeddings of the first views.
        z2: Embeddings of the second views.
        temperature: Softmax temperature ``t``.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(
            f"nt_xent_loss needs two [N, D] batches of the same shape, got {tuple(z1.shape)}, {tuple(z2.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, positives)


class NTXentLoss(nn.Module):
    """Module form of :func:`nt_xent_loss`.

    Args:
        temperature: Softmax temperature.
    """

    def __init__(self, *, temperature: float = 0.2):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return nt_xent_loss(z1, z2, temperature=self.temperature)


class ProjectionHead(nn.Sequential):
    """SimCLR's projection MLP ``Linear -> BN -> ReLU -> Linear`` (used for the loss only, dropped afterwards).

    Args:
        in_dim: Backbone feature width.
        hidden_dim: Hidden width.
        out_dim: Embedding width.
    """

    def __init__(self, in_dim: int, *, hidden_dim: int = 128, out_dim: int = 64):
        super().__init__(
            nn.Linear(in_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, out_dim),
        )


def _head_input_width(backbone: nn.Module) -> int:
    head = classifier_module(backbone)
    if isinstance(head, nn.Linear):
        return head.in_features
    try:
        return feature_width(backbone, "pooled")
    except AttributeError:
        raise ValueError(f"cannot tell the feature width of {type(backbone).__name__}: give feature_dim=") from None


class SSLModel(nn.Module):
    """A classifier backbone whose penultimate features (its classifier's input) feed a projection head.

    The backbone's own classification layer is not trained here; its weights stay as they are.

    Args:
        backbone: Any classifier with a linear classification layer (or a timm model).
        proj_hidden: Hidden width of the projection head.
        proj_dim: Embedding width.
        feature_dim: Feature width, when it cannot be read from the backbone.
    """

    def __init__(
        self, backbone: nn.Module, *, proj_hidden: int = 128, proj_dim: int = 64, feature_dim: int | None = None
    ):
        super().__init__()
        self.backbone = backbone
        self.projector = ProjectionHead(
            feature_dim or _head_input_width(backbone), hidden_dim=proj_hidden, out_dim=proj_dim
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``[B, D]`` of the backbone."""
        return penultimate_features(self.backbone, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.features(x))


class TwoViewDataset(Dataset):
    """Two independent augmentations of each image of ``dataset`` (labels dropped): ``(view1, view2)``.

    Args:
        dataset: Samples ``(image, ...)``, images as PIL (the transform makes tensors of them).
        transform: The random augmentation, applied twice.
    """

    def __init__(self, dataset: Dataset, transform: Callable[[Any], torch.Tensor]):
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor] | Skipped | None:
        sample = self.dataset[index]
        if sample is None or isinstance(sample, Skipped):  # an unreadable file: the loop counts it
            return sample
        image = sample[0] if isinstance(sample, list | tuple) else sample
        return self.transform(image), self.transform(image)


class ContrastiveStep:
    """``step_fn(model, (view1, view2)) -> loss`` for :class:`miil.core.train.Trainer`.

    Args:
        loss: The contrastive loss.
    """

    def __init__(self, loss: NTXentLoss):
        self.loss = loss

    def __call__(self, model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        v1, v2 = batch[0], batch[1]
        z = model(torch.cat([v1, v2]))
        return self.loss(*z.chunk(2))


def train_ssl(
    backbone: nn.Module,
    dataset: TwoViewDataset,
    cfg: TrainConfig,
    *,
    temperature: float = 0.2,
    proj_hidden: int = 128,
    proj_dim: int = 64,
    run_info: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``backbone`` in place with NT-Xent on the core engine (AMP, schedule, checkpoints, DDP as configured).

    Args:
        backbone: The model to pretrain (updated in place; its classification layer is left untouched).
        dataset: Two-view samples.
        cfg: Optimizer, schedule and run settings (``ema`` and validation are not used).
        temperature: NT-Xent temperature.
        proj_hidden: Projection head hidden width.
        proj_dim: Projection head output width.
        run_info: Extra facts stored with the run.
    """
    model = SSLModel(backbone, proj_hidden=proj_hidden, proj_dim=proj_dim)
    head = classifier_module(backbone)
    # The classifier gets no gradient here; frozen, it is neither decayed by the optimizer nor unused under DDP.
    frozen = [p for p in head.parameters() if p.requires_grad] if head is not None else []
    for p in frozen:
        p.requires_grad_(False)
    try:
        trainer = Trainer(
            model,
            None,
            dataset,
            cfg,
            step_fn=ContrastiveStep(NTXentLoss(temperature=temperature)),
            run_info={"stage": "self-supervised (SimCLR NT-Xent)", "temperature": temperature, **(run_info or {})},
        )
        return trainer.fit()
    finally:
        for p in frozen:
            p.requires_grad_(True)
