"""The frozen KD teacher: eval mode, no gradients, batch norm fused, input renormalized from the student's batch.

Paper: USI (arXiv 2204.03475), the KD scheme: the teacher (by default TResNet-L-V2 pretrained on ImageNet-21K and
fine-tuned on ImageNet-1K, timm ``tresnet_v2_l.miil_in21k_ft_in1k``) is frozen, runs on exactly the augmented and
mixed batch the student sees, under the same autocast, with its batch-norm layers fused for speed. It is not wrapped
in DDP: every process runs its own copy on its own shard of the batch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn as nn

from miil.core.backbones import create_backbone
from miil.core.errors import UserError

from .convert import load_weights
from .fuse import FuseResult, fuse_batchnorm
from .recipes import DEFAULT_TEACHER
from .renormalize import InputRenormalizer, model_mean_std

__all__ = ["DEFAULT_TEACHER", "FrozenTeacher", "create_teacher"]


class FrozenTeacher(nn.Module):
    """A teacher that cannot change: always in eval mode, parameters without gradients, forward under ``no_grad``.

    Args:
        model: The teacher network (its weights already loaded).
        student_mean: Normalization mean of the batches it will receive (the student's); ``None``: the teacher's own.
        student_std: Normalization std of those batches; ``None``: the teacher's own.
        mean: The teacher's own normalization mean (default: its timm ``pretrained_cfg``; a module without one is
            assumed to share the student's normalization).
        std: The teacher's own normalization std (default: as for ``mean``).
        fuse_bn: Fold batch norms into convs (:func:`miil.usi.fuse_batchnorm`).
        input_size: ``(C, H, W)`` of the batches, used to trace the model when fusing.
        channels_last: Run the teacher in channels-last memory format (faster convs on recent GPUs).
        compile: Wrap the teacher's forward in ``torch.compile``.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        student_mean: Sequence[float] | None,
        student_std: Sequence[float] | None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        fuse_bn: bool = True,
        input_size: Sequence[int] = (3, 224, 224),
        channels_last: bool = False,
        compile: bool = False,
    ):
        super().__init__()
        model.eval()
        model.requires_grad_(False)
        self.fuse_result: FuseResult | None = None
        if fuse_bn:
            device = next(model.parameters()).device
            example = torch.randn(2, *input_size, device=device)
            self.fuse_result = fuse_batchnorm(model, example)
            model.requires_grad_(False)  # fused convs are new modules
        own = model_mean_std(model)
        student = (
            own[0] if student_mean is None else tuple(float(v) for v in student_mean),
            own[1] if student_std is None else tuple(float(v) for v in student_std),
        )
        self.mean, self.std = model_mean_std(model, mean=mean, std=std, default=student)
        self.student_mean, self.student_std = student
        self.renorm = InputRenormalizer(
            from_mean=self.student_mean, from_std=self.student_std, to_mean=self.mean, to_std=self.std
        )
        self.channels_last = bool(channels_last)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model
        # Kept outside the module tree: the compiled wrapper would otherwise duplicate every weight in state_dict().
        object.__setattr__(self, "_run", torch.compile(model) if compile else model)
        super().train(False)

    def train(self, mode: bool = True) -> FrozenTeacher:
        """Ignore requests to train: the teacher stays in eval mode."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher logits for a batch normalized the student's way."""
        x = self.renorm(x.detach())
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self._run(x)

    def extra_repr(self) -> str:
        fused = "off" if self.fuse_result is None else f"{len(self.fuse_result.fused)} pairs"
        return f"mean={self.mean}, std={self.std}, bn_fused={fused}, channels_last={self.channels_last}"


def create_teacher(
    model: str | nn.Module = DEFAULT_TEACHER,
    *,
    num_classes: int,
    student_mean: Sequence[float] | None,
    student_std: Sequence[float] | None,
    checkpoint: str | os.PathLike | None = None,
    pretrained: bool = False,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    img_size: int = 224,
    fuse_bn: bool = True,
    channels_last: bool = False,
    compile: bool = False,
    device: str | torch.device | None = None,
) -> FrozenTeacher:
    """Build the frozen teacher from a timm name (with a local checkpoint or timm's pretrained weights) or a module.

    Args:
        model: timm model name (tags allowed: ``tresnet_v2_l.miil_in21k_ft_in1k``) or a module with weights.
        num_classes: Classes of the student's task; the teacher must predict the same classes.
        student_mean: Normalization mean of the student's batches (``None``: the teacher's own normalization).
        student_std: Normalization std of the student's batches (``None``: the teacher's own).
        checkpoint: Local weights file (safetensors or a weights-only torch file; the original InplaceABN TResNet
            layout is converted). Loaded strictly.
        pretrained: Download timm's pretrained weights for ``model`` when no checkpoint is given (needs internet).
        mean: The teacher's normalization mean (default: from its timm config).
        std: The teacher's normalization std.
        img_size: Side of the training batches (used to trace the model when fusing).
        fuse_bn: Fold batch norms into the preceding convs.
        channels_last: Run in channels-last memory format.
        compile: ``torch.compile`` the teacher.
        device: Device to put the teacher on (default: stay where it is / CPU).
    """
    if isinstance(model, str):
        if checkpoint is not None:
            net = create_backbone(model, num_classes=num_classes)
            load_weights(net, checkpoint)
        elif pretrained:
            # The head size is known without the weights: refuse a teacher for other classes before downloading it.
            with torch.device("meta"):
                head = int(getattr(create_backbone(model), "num_classes", num_classes))
            if head != num_classes:
                raise UserError(
                    f"teacher {model!r} was pretrained for {head} classes but the data has {num_classes}; pass "
                    "--teacher-checkpoint FILE with a teacher trained on your classes, or --teacher none (no KD)"
                )
            try:
                net = create_backbone(model, pretrained=True)
            except UserError as err:
                raise UserError(
                    f"the pretrained weights of teacher {model!r} could not be downloaded ({err.__cause__ or err}); "
                    "offline, pass --teacher-checkpoint FILE (local teacher weights, e.g. `miil usi convert` of the "
                    "original tresnet_l_v2_83_9.pth) or --teacher none to train without KD"
                ) from err
        else:
            raise UserError(
                f"teacher {model!r} has no weights: pass a checkpoint file (--teacher-checkpoint) or allow "
                "downloading timm's pretrained weights (--teacher-pretrained true)"
            )
    elif isinstance(model, nn.Module):
        net = model
    else:
        raise TypeError(f"teacher must be a timm model name or a module, got {type(model).__name__}")
    if device is not None:
        net = net.to(device)
    teacher = FrozenTeacher(
        net,
        student_mean=student_mean,
        student_std=student_std,
        mean=mean,
        std=std,
        fuse_bn=fuse_bn,
        input_size=(3, img_size, img_size),
        channels_last=channels_last,
        compile=compile,
    )
    return teacher
