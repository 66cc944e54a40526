"""One USI training step on the core engine: mix the batch, ask the teacher, apply the KD loss.

Paper: USI (arXiv 2204.03475), the KD scheme: the student and the frozen teacher see the same augmented, mixup/cutmix-
mixed batch; the loss is soft-target CE on the mixed labels plus ``alpha_kd`` times the KL to the teacher. The
batch transform runs on the device before the step (``Trainer(batch_transform=...)``), the step runs inside the
engine's autocast (``Trainer(step_fn=...)``), so the teacher shares the student's precision.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from .loss import USIDistillationLoss
from .mixup import KDMixup
from .teacher_logits import TeacherLogits

__all__ = ["KDBatchTransform", "KDStep"]


class KDBatchTransform:
    """``(images, labels[, indices]) -> (mixed images, soft labels[, mixed teacher log-probs])``.

    Args:
        mixup: The mixup/cutmix policy (also one-hot encodes when mixing is off).
        teacher_logits: Stored teacher outputs; the batch must then carry sample indices (``IndexedDataset``).
        channels_last: Convert the images to channels-last memory format for the student.
    """

    def __init__(self, mixup: KDMixup, *, teacher_logits: TeacherLogits | None = None, channels_last: bool = False):
        self.mixup = mixup
        self.teacher_logits = teacher_logits
        self.channels_last = channels_last

    def __call__(self, batch: Any) -> tuple[torch.Tensor, ...]:
        x, y = batch[0], batch[1]
        stored = None
        if self.teacher_logits is not None:
            if len(batch) < 3:
                raise ValueError(
                    "stored teacher logits need sample indices in the batch; wrap the dataset in IndexedDataset"
                )
            stored = self.teacher_logits.log_probs(batch[2], device=x.device)
        x, soft, stored = self.mixup.mix(x, y, stored)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return (x, soft) if stored is None else (x, soft, stored)


class KDStep:
    """``step_fn(model, batch) -> loss`` for :class:`miil.core.train.Trainer`.

    The teacher output comes from the batch (stored, already mixed) when present, else from ``teacher`` run on the
    mixed images; without either, the step is plain soft-target CE (the no-KD baseline).

    Args:
        loss: The USI loss.
        teacher: The frozen teacher, or ``None``.
    """

    def __init__(self, loss: USIDistillationLoss, teacher: nn.Module | None = None):
        self.loss = loss
        self.teacher = teacher

    def __call__(self, model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x, soft = batch[0], batch[1]
        if len(batch) > 2:
            teacher_out = batch[2]
        elif self.teacher is not None:
            teacher_out = self.teacher(x)
        else:
            teacher_out = None
        return self.loss(model(x), soft, teacher_out)
