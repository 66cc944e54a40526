"""Dataset-level metric meters for the training engine's evaluation loop (DDP aware).

A meter stores detached CPU copies of every batch's outputs and targets; ``compute()`` concatenates them, gathers
them from all ranks with :func:`miil.core.distributed.all_gather_cat` and evaluates the metric over the whole
dataset, so that every rank returns the same numbers. Metrics: mAP / CP..OF1 as in ASL (arXiv 2009.14119), top-k
accuracy as in ``timm.utils.accuracy``.

Under DDP every rank must call ``update`` at least once before ``compute`` (a ``DistributedSampler`` guarantees it),
and ``compute`` must be called on all ranks, since it is a collective operation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch

from miil.core.distributed import all_gather_cat

from .average_precision import mean_average_precision
from .classification import topk_accuracy
from .multilabel import multilabel_prf

__all__ = ["AccuracyMeter", "MeanAPMeter", "Meter", "StoringMeter"]


@runtime_checkable
class Meter(Protocol):
    """What the training engine expects of a metric meter."""

    def reset(self) -> None: ...

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None: ...

    def compute(self) -> dict[str, float]: ...


def _cpu_copy(t: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t).detach()
    if t.is_floating_point() and t.dtype != torch.float64:
        t = t.float()  # half / bfloat16 outputs of autocast: keep full float32 resolution, gloo-friendly dtype
    return t.to("cpu", copy=True)


class StoringMeter:
    """Accumulates ``(outputs, targets)`` batches and gathers them over ranks: the base of dataset-level meters.

    A subclass implements ``compute()`` from ``self.gathered()``, which returns every rank's outputs and targets
    concatenated (identical on all ranks). Ranks that saw no batch contribute an empty block.
    """

    def __init__(self) -> None:
        self._outputs: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []

    def reset(self) -> None:
        self._outputs.clear()
        self._targets.clear()

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Store one batch.

        Args:
            outputs: ``[B, C]`` model outputs.
            targets: Targets of the batch (``[B, C]`` multi-label or ``[B]`` class indices).
        """
        if outputs.shape[0] != targets.shape[0]:
            raise ValueError(f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} differ in batch size")
        self._outputs.append(_cpu_copy(outputs))
        self._targets.append(_cpu_copy(targets))

    def gathered(self) -> tuple[torch.Tensor, torch.Tensor]:
        # Under DDP a rank may hold no samples (validation sets smaller than the world size): it sends an empty block.
        outputs = all_gather_cat(torch.cat(self._outputs) if self._outputs else torch.zeros(0))
        targets = all_gather_cat(torch.cat(self._targets) if self._targets else torch.zeros(0))
        if outputs.shape[0] == 0:
            raise RuntimeError(f"{type(self).__name__}.compute() called before any update() on any rank")
        return outputs, targets


class MeanAPMeter(StoringMeter):
    """Multi-label mAP (in percent), optionally with the thresholded CP, CR, CF1, OP, OR, OF1.

    Args:
        skip_empty: Passed to :func:`mean_average_precision`.
        require_negatives: Passed to :func:`mean_average_precision`.
        sigmoid: Outputs are logits: apply a sigmoid before thresholding for the PRF metrics. The mAP is computed on
            the raw outputs, since the ranking is invariant to the sigmoid (and would suffer from its saturation).
        prf_threshold: When set, also report :func:`multilabel_prf` at this probability threshold.
    """

    def __init__(
        self,
        *,
        skip_empty: bool = True,
        require_negatives: bool = False,
        sigmoid: bool = True,
        prf_threshold: float | None = None,
    ):
        super().__init__()
        self.skip_empty = skip_empty
        self.require_negatives = require_negatives
        self.sigmoid = sigmoid
        self.prf_threshold = prf_threshold

    def compute(self) -> dict[str, float]:
        outputs, targets = self.gathered()
        outputs = outputs.to(torch.float64)
        m_ap = mean_average_precision(
            outputs, targets, skip_empty=self.skip_empty, require_negatives=self.require_negatives
        )
        result = {"mAP": 100.0 * m_ap}
        if self.prf_threshold is not None:
            probs = torch.sigmoid(outputs) if self.sigmoid else outputs
            result.update(multilabel_prf(probs, targets, threshold=self.prf_threshold))
        return result


class AccuracyMeter(StoringMeter):
    """Single-label top-k accuracy (in percent) under keys ``top{k}``; ``k`` larger than the class count is skipped.

    Args:
        topk: The values of ``k``.
    """

    def __init__(self, topk: Sequence[int] = (1, 5)):
        super().__init__()
        self.topk = tuple(int(k) for k in topk)

    def compute(self) -> dict[str, float]:
        outputs, targets = self.gathered()
        ks = [k for k in self.topk if k <= outputs.shape[-1]]
        if not ks:
            return {}
        return {f"top{k}": acc for k, acc in zip(ks, topk_accuracy(outputs, targets.long(), topk=ks))}
