"""Zero-shot multi-label metrics: ZSL and GZSL mAP and F1 at the top-3 and top-5 predictions.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933), zero-shot
experiments, which follow the NUS-WIDE protocol of earlier multi-label zero-shot work (Huynh & Elhamifar, CVPR 2020):
classes are split into seen (925) and unseen (81) ones; ZSL scores the unseen classes only, GZSL all classes. As in the
reference's evaluation, ZSL uses the test images that carry at least one unseen label; GZSL uses all test images. mAP
is the mean of the per-class average precisions (in percent); F1@K is the overall F1 of the K highest-scoring classes
of every image (micro precision and recall).

The reference repository reports the ZSL mAP only; GZSL and F1@K are added here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from miil.core.distributed import all_gather_cat
from miil.core.metrics import mean_average_precision, multilabel_prf

__all__ = ["ZeroShotMeter", "load_zsl_split", "zsl_metrics"]


def _metrics(scores: torch.Tensor, targets: torch.Tensor, prefix: str, topk: Sequence[int]) -> dict[str, float]:
    out = {f"{prefix}_mAP": 100.0 * mean_average_precision(scores, targets)}
    for k in topk:
        out[f"{prefix}_F1@{k}"] = multilabel_prf(scores, targets, top_k=k)["OF1"]
    return out


def zsl_metrics(
    scores: torch.Tensor,
    targets: torch.Tensor,
    unseen: torch.Tensor | Sequence[bool] | Sequence[int],
    *,
    topk: Sequence[int] = (3, 5),
) -> dict[str, float]:
    """ZSL and GZSL metrics from scores over all (seen and unseen) classes.

    Args:
        scores: ``[M, N]`` scores of every test image for every class.
        targets: ``[M, N]`` targets (1 positive, 0 negative, -1 not annotated).
        unseen: Boolean mask ``[N]`` of the unseen classes, or their indices.
        topk: The K of F1@K.

    Returns:
        ``ZSL_mAP``, ``ZSL_F1@K``, ``GZSL_mAP``, ``GZSL_F1@K`` (percent), plus ``ZSL_images``, the number of images
        the ZSL numbers are measured on.
    """
    s = torch.as_tensor(scores).detach().double().cpu()
    y = torch.as_tensor(targets).detach().double().cpu()
    if s.shape != y.shape or s.ndim != 2:
        raise ValueError(f"scores {tuple(s.shape)} and targets {tuple(y.shape)} must be equal [M, N] shapes")
    mask = torch.as_tensor(unseen)
    if mask.dtype != torch.bool:
        index = mask.long()
        mask = torch.zeros(s.shape[1], dtype=torch.bool)
        mask[index] = True
    if mask.shape != (s.shape[1],):
        raise ValueError(f"unseen mask has shape {tuple(mask.shape)}, expected [{s.shape[1]}]")
    if not mask.any():
        raise ValueError("no unseen class given")
    zs, zy = s[:, mask], y[:, mask]
    rows = (zy > 0).any(dim=1)
    result = _metrics(zs[rows], zy[rows], "ZSL", topk) if rows.any() else {}
    result.update(_metrics(s, y, "GZSL", topk))
    result["ZSL_images"] = float(rows.sum())
    return result


class ZeroShotMeter:
    """Meter for the training engine: collects scores over all classes and computes :func:`zsl_metrics`.

    The first key is ``ZSL_mAP``, so the engine keeps the best model by it unless ``eval_metric`` says otherwise.

    Args:
        unseen: Boolean mask ``[N]`` (or indices) of the unseen classes among the scored ones.
        topk: The K of F1@K.
    """

    def __init__(self, unseen: torch.Tensor | Sequence[bool] | Sequence[int], *, topk: Sequence[int] = (3, 5)):
        self.unseen = torch.as_tensor(unseen)
        self.topk = tuple(topk)
        self._scores: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []

    def reset(self) -> None:
        self._scores.clear()
        self._targets.clear()

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        self._scores.append(outputs.detach().float().cpu())
        self._targets.append(targets.detach().float().cpu())

    def compute(self) -> dict[str, float]:
        if not self._scores:
            raise RuntimeError("ZeroShotMeter.compute() called before any update()")
        scores = all_gather_cat(torch.cat(self._scores))
        targets = all_gather_cat(torch.cat(self._targets))
        return zsl_metrics(scores, targets, self.unseen, topk=self.topk)


def load_zsl_split(path: str | os.PathLike, classes: Sequence[str]) -> tuple[list[int], list[int]]:
    """Seen and unseen class indices from a NUS-WIDE style split file.

    The file is JSON with ``"train class"`` (seen) and ``"test class"`` (unseen) lists of class names, like
    ``benchmark_81_v0.json`` of the NUS-WIDE zero-shot benchmark. Without ``"train class"``, every class not in
    ``"test class"`` is seen.

    Args:
        path: The JSON split file.
        classes: The dataset's class names (their order fixes the indices).

    Returns:
        ``(seen_indices, unseen_indices)``.
    """
    path = Path(path)
    try:
        split = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"zero-shot split file {path} does not exist") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"zero-shot split file {path} is not valid JSON: {err}") from None
    if not isinstance(split, dict) or "test class" not in split:
        raise ValueError(f"{path}: expected a JSON object with a 'test class' list (and optionally 'train class')")
    index = {c: i for i, c in enumerate(classes)}
    unknown = [c for key in ("train class", "test class") for c in split.get(key, []) if c not in index]
    if unknown:
        raise ValueError(f"{path}: class names not in the dataset: {sorted(set(unknown))[:20]}")
    unseen = sorted(index[c] for c in set(split["test class"]))
    if "train class" in split:
        seen = sorted(index[c] for c in set(split["train class"]))
    else:
        seen = [i for i in range(len(classes)) if i not in set(unseen)]
    overlap = sorted(set(seen) & set(unseen))
    if overlap:
        raise ValueError(f"{path}: classes listed as both seen and unseen: {[classes[i] for i in overlap][:20]}")
    if not unseen or not seen:
        raise ValueError(f"{path}: the split needs at least one seen and one unseen class")
    return seen, unseen
