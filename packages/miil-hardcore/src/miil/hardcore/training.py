"""Training the supernet (heaviest path, then multipath with distillation) and fine-tuning children, on the core engine.

Paper: HardCoRe-NAS (arXiv 2102.11646), section 3.2 and appendix (training details):

1. Heaviest path: the supernet follows the heaviest architecture (largest expansion, kernel, SE, depth) and trains
   as a plain network.
2. Channels are ordered by Taylor importance (:mod:`miil.hardcore.channel_ordering`).
3. Multipath: every sample follows its own uniformly sampled path; loss ``CE + kd_weight * (KL(teacher || student)
   + sum_stages MSE(features) / feature_kd_divisor)``, the teacher being the heaviest path of the stage-1 supernet.
4. Fine-tune of an extracted child: ``CE + kd_weight * KL`` with the heaviest path as the teacher.

All loops are :class:`miil.core.train.Trainer`; these are its ``step_fn``\\s and small orchestration helpers.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from miil.core import distributed as du
from miil.core.data import skip_unreadable_collate
from miil.core.losses import distillation_loss
from miil.core.metrics import AccuracyMeter
from miil.core.train import Trainer

from .channel_ordering import reorder_channels, taylor_channel_importance
from .convert import supernet_from_heaviest
from .extract import child_state_dict
from .supernet import HardCoReSupernet

__all__ = [
    "ChildDistillationStep",
    "MultipathDistillationStep",
    "SupervisedStep",
    "frozen_heaviest_teacher",
    "make_trainer",
    "order_channels",
    "spread_heaviest_path",
    "train_supernet_stages",
]


def _touch_all(model: nn.Module) -> torch.Tensor:
    """A zero that depends on every trainable parameter.

    Per-sample routing leaves some options unused in a batch; DDP without ``find_unused_parameters`` would then
    wait forever for their gradients. Adding this zero gives every parameter a (zero) gradient.
    """
    return sum(p.reshape(-1)[:1].sum() for p in model.parameters() if p.requires_grad) * 0.0


class SupervisedStep:
    """``CE`` (with label smoothing) of the model's logits; used for heaviest-path and from-scratch training.

    Args:
        label_smoothing: Label smoothing of the cross-entropy.
    """

    def __init__(self, *, label_smoothing: float = 0.0):
        self.label_smoothing = label_smoothing

    def __call__(self, model: nn.Module, batch: Any) -> torch.Tensor:
        loss = F.cross_entropy(model(batch[0]), batch[1], label_smoothing=self.label_smoothing)
        return loss + _touch_all(model)


def frozen_heaviest_teacher(supernet: HardCoReSupernet) -> HardCoReSupernet:
    """A frozen copy of the supernet that follows its heaviest path (the distillation teacher)."""
    teacher = copy.deepcopy(supernet)
    teacher.set_sampling(supernet.space.heaviest())
    teacher.requires_grad_(False)
    return teacher.eval()


class MultipathDistillationStep:
    """Multipath step: ``CE + kd_weight * (KL(teacher || student) + sum_s MSE(f_s) / feature_kd_divisor)``.

    Args:
        teacher: The frozen heaviest-path supernet.
        kd_weight: Weight of the distillation terms (the original: 1).
        feature_kd_divisor: Divisor of the stage-feature MSE (the original: 50).
        temperature: KL temperature.
        label_smoothing: Label smoothing of the cross-entropy.
    """

    def __init__(
        self,
        teacher: HardCoReSupernet,
        *,
        kd_weight: float = 1.0,
        feature_kd_divisor: float = 50.0,
        temperature: float = 1.0,
        label_smoothing: float = 0.0,
    ):
        self.teacher = teacher
        self.kd_weight = kd_weight
        self.feature_kd_divisor = feature_kd_divisor
        self.temperature = temperature
        self.label_smoothing = label_smoothing

    def __call__(self, model: nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch[0], batch[1]
        logits, feats = model(x, return_features=True)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        if self.kd_weight > 0:
            self.teacher.to(x.device)
            with torch.no_grad():
                t_logits, t_feats = self.teacher(x, return_features=True)
            kd = distillation_loss(logits, t_logits, temperature=self.temperature)
            kd = kd + sum(F.mse_loss(s, t) for s, t in zip(feats, t_feats)) / self.feature_kd_divisor
            loss = loss + self.kd_weight * kd
        return loss + _touch_all(model)


class ChildDistillationStep:
    """Fine-tune step: ``CE + kd_weight * KL(teacher || child)`` (the original: weight 2, temperature 1).

    Args:
        teacher: A frozen module returning logits (the heaviest path), or ``None`` for plain CE.
        kd_weight: Weight of the KL term.
        temperature: KL temperature.
        label_smoothing: Label smoothing of the cross-entropy.
    """

    def __init__(
        self,
        teacher: nn.Module | None,
        *,
        kd_weight: float = 2.0,
        temperature: float = 1.0,
        label_smoothing: float = 0.0,
    ):
        self.teacher = teacher
        self.kd_weight = kd_weight
        self.temperature = temperature
        self.label_smoothing = label_smoothing

    def __call__(self, model: nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch[0], batch[1]
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        if self.teacher is not None and self.kd_weight > 0:
            self.teacher.to(x.device)
            with torch.no_grad():
                t_logits = self.teacher(x)
            loss = loss + self.kd_weight * distillation_loss(logits, t_logits, temperature=self.temperature)
        return loss


def make_trainer(
    model: nn.Module,
    train_dataset: Dataset,
    cfg: Any,
    *,
    step_fn: Callable[[nn.Module, Any], torch.Tensor],
    val_dataset: Dataset | None = None,
    run_info: dict[str, Any] | None = None,
) -> Trainer:
    """A core :class:`Trainer` with top-1/top-5 validation (the recipe's ``decay_epochs`` / ``decay_rate`` drive
    the step schedule)."""
    return Trainer(
        model,
        nn.CrossEntropyLoss(),
        train_dataset,
        cfg,
        val_dataset=val_dataset,
        meter=AccuracyMeter(topk=(1, 5)),
        step_fn=step_fn,
        run_info=run_info,
    )


def order_channels(
    supernet: HardCoReSupernet,
    dataset: Dataset,
    *,
    fraction: float = 0.1,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> None:
    """Taylor-order every block's expansion channels on ``fraction`` of ``dataset`` (in place).

    Args:
        supernet: The supernet after heaviest-path training.
        dataset: The training images (the weights part of the split).
        fraction: Fraction of ``dataset`` the importance is measured on (the paper: 10%).
        batch_size: Images per backward pass.
        seed: Seed of the subset.
        progress: A tqdm bar over the batches (rank 0): 10% of ImageNet is a long pass.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"taylor fraction must be in (0, 1], got {fraction}")
    n = max(1, int(round(fraction * len(dataset))))
    gen = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(dataset), generator=gen)[:n].tolist()
    loader = DataLoader(Subset(dataset, index), batch_size=batch_size, collate_fn=skip_unreadable_collate)
    bar = tqdm(loader, desc="taylor channel order", disable=not progress or not du.is_main_process(), leave=False)
    reorder_channels(supernet, taylor_channel_importance(supernet, bar))


def spread_heaviest_path(supernet: HardCoReSupernet) -> None:
    """Start the multipath stage from the heaviest path, as the original does when it loads ``w_heaviest``.

    Every option inherits the heaviest path's statistics: its depthwise BN is copied to every kernel size, its output
    BN to every (expansion, SE) pair, and its squeeze-excite (sliced) to every expansion. The heaviest path itself is
    unchanged; weights the heaviest path does not have (the other kernels' depthwise convs) keep their values.

    Args:
        supernet: The supernet after heaviest-path training (changed in place).
    """
    converted = supernet_from_heaviest(child_state_dict(supernet, supernet.space.heaviest()), supernet.space)
    keep = set(converted.initialised)
    current = supernet.state_dict()
    supernet.load_state_dict({k: current[k] if k in keep else v for k, v in converted.state_dict.items()})


def train_supernet_stages(
    supernet: HardCoReSupernet,
    train_dataset: Dataset,
    heaviest_cfg: Any,
    multipath_cfg: Any,
    *,
    val_dataset: Dataset | None = None,
) -> HardCoReSupernet:
    """Both supernet stages of the paper (section 3.5) in one call: heaviest path, then multipath with distillation.

    Stage 1 trains the heaviest path with cross-entropy; its frozen copy becomes the teacher; every option inherits
    the heaviest path's BN and SE (:func:`spread_heaviest_path`); the expansion channels are ordered by Taylor
    importance; stage 2 trains per-sample random paths with the teacher's KL and stage-feature
    distillation. ``miil hardcore train-supernet`` runs the stages separately (``--init``), with the same steps.

    Args:
        supernet: A fresh supernet.
        train_dataset: ``(image, label)`` training samples (the part not held out for the search).
        heaviest_cfg: Stage-1 recipe (``SupernetRecipe``; its ``out_dir`` receives the run).
        multipath_cfg: Stage-2 recipe (also gives the Taylor fraction, batch size and seed of the channel ordering).
        val_dataset: Optional validation samples for both stages.

    Returns:
        The frozen heaviest-path teacher (the stage-1 network); ``supernet`` is trained in place.
    """
    supernet.set_sampling(supernet.space.heaviest())
    stage1 = SupervisedStep(label_smoothing=heaviest_cfg.label_smoothing)
    make_trainer(supernet, train_dataset, heaviest_cfg, step_fn=stage1, val_dataset=val_dataset).fit()
    teacher = frozen_heaviest_teacher(supernet)
    spread_heaviest_path(supernet)
    order_channels(
        supernet,
        train_dataset,
        fraction=multipath_cfg.taylor_fraction,
        batch_size=multipath_cfg.batch_size,
        seed=multipath_cfg.seed,
    )
    supernet.set_sampling(None)
    stage2 = MultipathDistillationStep(
        teacher,
        kd_weight=multipath_cfg.kd_weight,
        feature_kd_divisor=multipath_cfg.feature_kd_divisor,
        temperature=multipath_cfg.kd_temperature,
        label_smoothing=multipath_cfg.label_smoothing,
    )
    make_trainer(supernet, train_dataset, multipath_cfg, step_fn=stage2, val_dataset=val_dataset).fit()
    return teacher
