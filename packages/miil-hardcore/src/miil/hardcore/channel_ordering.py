"""Taylor-importance ordering of the expansion channels, done once between the two supernet training stages.

Paper: HardCoRe-NAS (arXiv 2102.11646), section 3.2 / appendix: before elastic (multipath) training the channels of
every block's expansion are sorted by importance, so that the narrow expansion ratios, which keep only the first
channels, keep the most important ones. Importance is the first-order Taylor score (Molchanov et al., 2019) of the
heaviest path on a slice of the training data: for channel ``c``, ``sum |w * dL/dw|`` over every weight that belongs
to ``c`` (its row of the expansion conv, its BN scale and shift, its depthwise filters and BNs, its column of the
projection), with the gradients summed over the batches.

Reordering permutes these tensors together (and the largest squeeze-excite's input and output channels), so the
heaviest path computes exactly the same function afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .elastic_block import ElasticInvertedResidual
from .supernet import HardCoReSupernet, fixed_paths

__all__ = ["reorder_channels", "taylor_channel_importance"]


def _channel_params(block: ElasticInvertedResidual) -> list[tuple[torch.Tensor, int]]:
    """(parameter, channel dim) of every tensor indexed by the expansion channels (the largest SE excluded)."""
    out = [(block.conv_pw.weight, 0), (block.bn1.weight, 0), (block.bn1.bias, 0), (block.conv_pwl.weight, 1)]
    for conv, bn in zip(block.conv_dw, block.bn2):
        out += [(conv.weight, 0), (bn.weight, 0), (bn.bias, 0)]
    return out


def taylor_channel_importance(
    supernet: HardCoReSupernet, batches: Iterable, *, device: torch.device | str | None = None
) -> list[list[torch.Tensor]]:
    """Taylor importance of every expansion channel of every elastic block, along the heaviest path.

    Args:
        supernet: The supernet after heaviest-path training.
        batches: Iterable of ``(images, labels, ...)`` batches (the paper uses 10% of the training set).
        device: Where to run (default: the supernet's device).

    Returns:
        ``scores[s][j]``: ``[max_mid]`` importance of the channels of block ``j`` of stage ``s``.
    """
    device = torch.device(device) if device is not None else next(supernet.parameters()).device
    was_training = supernet.training
    supernet.eval()
    supernet.zero_grad(set_to_none=True)
    arch = supernet.space.heaviest()
    seen = 0
    for batch in batches:
        if batch is None:  # every image of the batch was unreadable
            continue
        x, y = batch[0].to(device), batch[1].to(device)
        loss = F.cross_entropy(supernet(x, fixed_paths(supernet.space, arch, x.shape[0], device=device)), y)
        loss.backward()
        seen += 1
    if seen == 0:
        raise ValueError("taylor_channel_importance got no batches")
    scores = []
    for stage in supernet.stages:
        stage_scores = []
        for block in stage:
            total = torch.zeros(block.conv_pw.out_channels, device=device)
            for param, dim in _channel_params(block):
                if param.grad is None:
                    continue
                contrib = (param.detach() * param.grad).abs()
                total += contrib.sum(dim=[d for d in range(contrib.ndim) if d != dim]) if contrib.ndim > 1 else contrib
            stage_scores.append(total)
        scores.append(stage_scores)
    supernet.zero_grad(set_to_none=True)
    supernet.train(was_training)
    return scores


def _permute(param: nn.Parameter | torch.Tensor, perm: torch.Tensor, dim: int) -> None:
    param.data.copy_(param.data.index_select(dim, perm))


@torch.no_grad()
def reorder_channels(supernet: HardCoReSupernet, scores: list[list[torch.Tensor]]) -> list[list[torch.Tensor]]:
    """Sort every block's expansion channels by decreasing score (in place); returns the permutations used."""
    perms = []
    for stage, stage_scores in zip(supernet.stages, scores):
        stage_perms = []
        for block, score in zip(stage, stage_scores):
            perm = torch.argsort(score.to(block.conv_pw.weight.device), descending=True, stable=True)
            for param, dim in _channel_params(block):
                _permute(param, perm, dim)
            for bn in [block.bn1, *block.bn2]:
                _permute(bn.running_mean, perm, 0)
                _permute(bn.running_var, perm, 0)
            if block.se is not None and block.mid[-1] == block.conv_pw.out_channels:
                se = block.se[-1]
                _permute(se.conv_reduce.weight, perm, 1)
                _permute(se.conv_expand.weight, perm, 0)
                _permute(se.conv_expand.bias, perm, 0)
            stage_perms.append(perm)
        perms.append(stage_perms)
    return perms
