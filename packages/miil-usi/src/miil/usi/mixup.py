"""Mixup / CutMix for KD: timm's ``Mixup``, also mixing precomputed teacher distributions with the same lambda.

Paper: USI (arXiv 2204.03475), the authors' ``train.py``: mixup 0.8 and cutmix 1.0 (probability 1, switch probability
0.5), no label smoothing; the teacher sees the same mixed batch as the student. When the teacher's outputs are
precomputed (one distribution per image, not per augmented view), the closest stand-in for "the teacher on the mixed
image" is the teacher's distributions mixed like the labels: ``lam * p_i + (1 - lam) * p_flip(i)``.
"""

from __future__ import annotations

import math

import torch
from timm.data import Mixup
from timm.data.mixup import mixup_target

__all__ = ["KDMixup"]


class KDMixup(Mixup):
    """timm ``Mixup`` whose ``__call__`` also mixes an optional ``[B, C]`` batch of teacher log-probabilities.

    With both ``mixup_alpha`` and ``cutmix_alpha`` at 0 (and no ``cutmix_minmax``) it only one-hot encodes the labels
    (with label smoothing), so the same call works for runs without mixing.

    Args:
        mixup_alpha: Beta(alpha, alpha) parameter of mixup; 0 disables mixup.
        cutmix_alpha: Beta parameter of cutmix; 0 disables cutmix.
        cutmix_minmax: Optional (min, max) box-size ratio range for cutmix instead of ``cutmix_alpha``.
        prob: Probability of mixing a batch (or element).
        switch_prob: Probability of cutmix instead of mixup when both are on.
        mode: "batch", "pair" or "elem" (timm's modes).
        correct_lam: Correct lambda for cutmix boxes clipped at the border.
        label_smoothing: Label smoothing of the one-hot targets.
        num_classes: Number of classes.
    """

    def __init__(
        self,
        *,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        cutmix_minmax: tuple[float, float] | None = None,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        mode: str = "batch",
        correct_lam: bool = True,
        label_smoothing: float = 0.0,
        num_classes: int = 1000,
    ):
        if mode not in ("batch", "pair", "elem"):
            raise ValueError(f"mixup mode must be 'batch', 'pair' or 'elem', got {mode!r}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        super().__init__(
            mixup_alpha=mixup_alpha,
            cutmix_alpha=cutmix_alpha,
            cutmix_minmax=cutmix_minmax,
            prob=prob,
            switch_prob=switch_prob,
            mode=mode,
            correct_lam=correct_lam,
            label_smoothing=label_smoothing,
            num_classes=num_classes,
        )
        self.active = (mixup_alpha > 0 or cutmix_alpha > 0 or cutmix_minmax is not None) and prob > 0

    def mix(
        self, x: torch.Tensor, target: torch.Tensor, teacher_log_probs: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Mix a batch in place (any size: batches lose samples when unreadable files are skipped).

        Args:
            x: ``[B, C, H, W]`` images (mixed in place).
            target: ``[B]`` class indices.
            teacher_log_probs: Optional ``[B, num_classes]`` teacher log-probabilities of the unmixed images.

        Returns:
            ``(x, soft_targets, mixed teacher log-probabilities or None)``.
        """
        if target.ndim != 1:
            raise ValueError(f"expected [B] class indices as targets, got shape {tuple(target.shape)}")
        if not self.active:
            return x, mixup_target(target, self.num_classes, 1.0, self.label_smoothing), teacher_log_probs
        if len(x) % 2 and self.mode != "batch":
            # An odd batch (an unreadable file was skipped): mix the first B - 1 in pairs, keep the last one as it is.
            # ("batch" mode pairs sample i with B - 1 - i, so the middle one mixes with itself: unchanged, exact.)
            _, soft, mixed = self.mix(
                x[:-1], target[:-1], None if teacher_log_probs is None else teacher_log_probs[:-1]
            )
            last = mixup_target(target[-1:], self.num_classes, 1.0, self.label_smoothing)
            if mixed is not None:
                mixed = torch.cat([mixed, teacher_log_probs[-1:].float()])
            return x, torch.cat([soft, last.to(soft.dtype)]), mixed
        if self.mode == "elem":
            lam = self._mix_elem(x)
        elif self.mode == "pair":
            lam = self._mix_pair(x)
        else:
            lam = self._mix_batch(x)
        soft = mixup_target(target, self.num_classes, lam, self.label_smoothing)
        if teacher_log_probs is not None:
            teacher_log_probs = _mix_log_probs(teacher_log_probs, lam)
        return x, soft, teacher_log_probs

    def __call__(self, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, soft, _ = self.mix(x, target)
        return x, soft


def _mix_log_probs(log_p: torch.Tensor, lam: float | torch.Tensor) -> torch.Tensor:
    """``log(lam * p + (1 - lam) * p.flip(0))`` computed in log space (exact at lam 0 and 1)."""
    log_p = log_p.float()
    if isinstance(lam, torch.Tensor):
        lam = lam.to(device=log_p.device, dtype=log_p.dtype).reshape(-1, 1).clamp(0.0, 1.0)
        a, b = torch.log(lam), torch.log1p(-lam)
        return torch.logaddexp(log_p + a, log_p.flip(0) + b)
    lam = float(lam)
    if lam >= 1.0:
        return log_p
    if lam <= 0.0:
        return log_p.flip(0)
    return torch.logaddexp(log_p + math.log(lam), log_p.flip(0) + math.log1p(-lam))
