"""Renormalizing the student's input batch for a teacher trained with a different mean/std.

Paper: "Solving ImageNet: a Unified Scheme for Training any Backbone to Top Results" (USI, arXiv 2204.03475): the
teacher sees the same augmented batch as the student. When the two models were trained with
different input normalizations, the batch must be mapped back to pixel values and normalized again:
``x_t = (x_s * std_s + mean_s - mean_t) / std_t``. The original ``kd_utils.normalize_input`` computed
``x_s * std_s / std_t - (mean_t - mean_s)``, which only agrees when ``std_t`` is 1 (true for its TResNet teacher, whose
mean is 0 and std 1, but not for a general teacher); this module implements the correct form.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

__all__ = ["InputRenormalizer", "model_mean_std", "renormalize"]

IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)


def _as_stat(values: Sequence[float] | torch.Tensor, name: str) -> torch.Tensor:
    t = torch.as_tensor(values, dtype=torch.float32).flatten()
    if t.numel() == 0:
        raise ValueError(f"{name} is empty; give one value per input channel")
    if name.endswith("std") and bool((t <= 0).any()):
        raise ValueError(f"{name} must be positive, got {t.tolist()}")
    return t


def renormalize(
    x: torch.Tensor,
    *,
    from_mean: Sequence[float] | torch.Tensor,
    from_std: Sequence[float] | torch.Tensor,
    to_mean: Sequence[float] | torch.Tensor,
    to_std: Sequence[float] | torch.Tensor,
) -> torch.Tensor:
    """Map a batch normalized with ``(from_mean, from_std)`` to the normalization ``(to_mean, to_std)``.

    Args:
        x: ``[B, C, ...]`` batch normalized as ``(pixels - from_mean) / from_std``.
        from_mean: Per-channel mean the batch was normalized with.
        from_std: Per-channel std the batch was normalized with.
        to_mean: Per-channel mean the receiving model expects.
        to_std: Per-channel std the receiving model expects.

    Returns:
        ``(x * from_std + from_mean - to_mean) / to_std``, in the dtype of ``x``.
    """
    return InputRenormalizer(from_mean=from_mean, from_std=from_std, to_mean=to_mean, to_std=to_std).to(x.device)(x)


class InputRenormalizer(nn.Module):
    """``x -> x * scale + shift`` with ``scale = from_std / to_std`` and ``shift = (from_mean - to_mean) / to_std``.

    An identity (no arithmetic at all) when both normalizations are equal, so a teacher that shares the student's
    normalization receives the student's batch bit for bit.

    Args:
        from_mean: Per-channel mean of the incoming batch (the student's).
        from_std: Per-channel std of the incoming batch.
        to_mean: Per-channel mean the receiving model (the teacher) was trained with.
        to_std: Per-channel std the receiving model was trained with.
    """

    def __init__(
        self,
        *,
        from_mean: Sequence[float] | torch.Tensor,
        from_std: Sequence[float] | torch.Tensor,
        to_mean: Sequence[float] | torch.Tensor,
        to_std: Sequence[float] | torch.Tensor,
    ):
        super().__init__()
        fm, fs = _as_stat(from_mean, "from_mean"), _as_stat(from_std, "from_std")
        tm, ts = _as_stat(to_mean, "to_mean"), _as_stat(to_std, "to_std")
        if len({fm.numel(), fs.numel(), tm.numel(), ts.numel()}) != 1:
            raise ValueError(
                f"mean/std must all have one value per channel, got {fm.numel()}, {fs.numel()}, {tm.numel()}, "
                f"{ts.numel()} values"
            )
        self.identity = bool(torch.equal(fm, tm) and torch.equal(fs, ts))
        self.register_buffer("scale", (fs.double() / ts.double()).float(), persistent=False)
        self.register_buffer("shift", ((fm.double() - tm.double()) / ts.double()).float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.identity:
            return x
        if x.ndim < 2 or x.shape[1] != self.scale.numel():
            raise ValueError(f"expected a [B, {self.scale.numel()}, ...] batch, got shape {tuple(x.shape)}")
        view = (1, -1) + (1,) * (x.ndim - 2)
        scale = self.scale.to(device=x.device, dtype=x.dtype).view(view)
        shift = self.shift.to(device=x.device, dtype=x.dtype).view(view)
        return torch.addcmul(shift, x, scale)

    def extra_repr(self) -> str:
        return "identity" if self.identity else f"scale={self.scale.tolist()}, shift={self.shift.tolist()}"


def model_mean_std(
    model: nn.Module,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    default: tuple[Sequence[float], Sequence[float]] = (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD),
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The input normalization a model expects: explicit values, else timm's ``pretrained_cfg``, else ``default``.

    Args:
        model: A timm model (or any module; ``pretrained_cfg`` is read when present).
        mean: Explicit per-channel mean, overriding the model's.
        std: Explicit per-channel std, overriding the model's.
        default: ``(mean, std)`` for modules that do not declare theirs (ImageNet's by default).
    """
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    m = tuple(float(v) for v in (mean if mean is not None else cfg.get("mean", default[0])))
    s = tuple(float(v) for v in (std if std is not None else cfg.get("std", default[1])))
    if len(m) != len(s):
        raise ValueError(f"mean {m} and std {s} have different lengths")
    if any(v <= 0 for v in s):
        raise ValueError(f"std must be positive, got {s}")
    return m, s
