"""The HardCoRe-NAS one-shot supernet: elastic blocks, sink-point depth and per-sample hard Gumbel path sampling.

Paper: HardCoRe-NAS (arXiv 2102.11646), section 3.2 ("multipath sampling" and the one-shot model). The fixed frame
(stem, first block, head block, conv head, classifier) is the timm ``MobileNetV3`` frame of the space; each searched
block is an :class:`~miil.hardcore.elastic_block.ElasticInvertedResidual`. A stage's output is the sink point
``sum_b beta_b * h_{d_b}``: the output after ``d_b`` blocks weighted by the depth weights, so per-sample one-hot
depth weights pick each sample's depth.

Paths are :class:`PathWeights`: per-sample one-hot weights of every block's options ``[S, D, B, C]`` and of every
stage's depths ``[S, B, n_depths]``, either sampled with hard Gumbel-softmax from architecture logits (straight-through
gradients to the logits) or fixed to one architecture. Without explicit paths the supernet follows its
``sampling`` attribute: an :class:`~miil.hardcore.search_space.Architecture` (e.g. the heaviest path, for the first
training stage) or ``None`` for uniform multipath sampling (the second stage).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import get_act_layer
from timm.models._efficientnet_builder import efficientnet_init_weights

from .builder import build_child, hardcore_se_layer
from .elastic_block import ElasticInvertedResidual
from .search_space import Architecture, SearchSpace

__all__ = ["HardCoReSupernet", "PathWeights", "fixed_paths", "sample_paths"]


@dataclass
class PathWeights:
    """Per-sample path weights.

    Args:
        blocks: ``[stages, max depth, batch, options]`` option weights of every block.
        depths: ``[stages, batch, depths]`` depth weights of every stage.
    """

    blocks: torch.Tensor
    depths: torch.Tensor


def sample_paths(
    alpha_logits: torch.Tensor, beta_logits: torch.Tensor, batch_size: int, *, tau: float = 1.0
) -> PathWeights:
    """Per-sample hard Gumbel-softmax samples of every block option and stage depth (straight-through).

    Args:
        alpha_logits: ``[stages, max depth, options]`` option logits (log-probabilities).
        beta_logits: ``[stages, depths]`` depth logits.
        batch_size: Samples in the batch; each gets its own path.
        tau: Gumbel-softmax temperature of the straight-through gradient.
    """
    s, d, c = alpha_logits.shape
    blocks = F.gumbel_softmax(alpha_logits[:, :, None, :].expand(s, d, batch_size, c), tau=tau, hard=True)
    depths = F.gumbel_softmax(beta_logits[:, None, :].expand(s, batch_size, beta_logits.shape[1]), tau=tau, hard=True)
    return PathWeights(blocks, depths)


def fixed_paths(
    space: SearchSpace, arch: Architecture, batch_size: int, *, device: torch.device | str = "cpu"
) -> PathWeights:
    """The same architecture for every sample (one-hot weights)."""
    alpha, beta = space.alpha_beta(arch)
    a = torch.as_tensor(alpha, dtype=torch.float32, device=device)
    b = torch.as_tensor(beta, dtype=torch.float32, device=device)
    return PathWeights(
        a[:, :, None, :].expand(*a.shape[:2], batch_size, a.shape[2]),
        b[:, None, :].expand(b.shape[0], batch_size, b.shape[1]),
    )


class HardCoReSupernet(nn.Module):
    """The one-shot model over a :class:`SearchSpace`.

    Args:
        space: The search space.
        num_classes: Classifier outputs.
        drop_rate: Dropout before the classifier.
        drop_path_rate: Stochastic depth, spread linearly over the blocks of the heaviest path as timm does.
    """

    def __init__(
        self, space: SearchSpace, *, num_classes: int = 1000, drop_rate: float = 0.0, drop_path_rate: float = 0.0
    ):
        super().__init__()
        self.space = space
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.sampling: Architecture | None = None
        frame = build_child(space, space.heaviest(), num_classes=num_classes, drop_rate=drop_rate)
        self.conv_stem, self.bn1 = frame.conv_stem, frame.bn1
        self.stem_block = frame.blocks[0][0]
        total = 2 + space.num_stages * space.max_depth
        se_layer = hardcore_se_layer()
        stages = []
        index = 1
        for s, spec in enumerate(space.stages):
            blocks = []
            for j in range(space.max_depth):
                geo = space.block_geometry(s, j)
                blocks.append(
                    ElasticInvertedResidual(
                        geo["in_channels"],
                        geo["out_channels"],
                        stride=geo["stride"],
                        options=space.options,
                        act_layer=get_act_layer(spec.act),
                        se_layer=se_layer,
                        drop_path_rate=drop_path_rate * index / total,
                    )
                )
                index += 1
            stages.append(nn.ModuleList(blocks))
        self.stages = nn.ModuleList(stages)
        self.head_block = frame.blocks[-1][0]
        self.global_pool, self.conv_head, self.norm_head, self.act2 = (
            frame.global_pool,
            frame.conv_head,
            frame.norm_head,
            frame.act2,
        )
        self.flatten, self.classifier = frame.flatten, frame.classifier
        efficientnet_init_weights(self)

    # ------------------------------------------------------------------ paths
    def set_sampling(self, arch: Architecture | None) -> None:
        """Follow one architecture (e.g. ``space.heaviest()``) or, with ``None``, sample uniformly per sample."""
        self.sampling = None if arch is None else self.space.validate(arch)

    def default_paths(self, batch_size: int, device: torch.device) -> PathWeights:
        if self.sampling is not None:
            return fixed_paths(self.space, self.sampling, batch_size, device=device)
        zeros_a = torch.zeros(self.space.alpha_shape, device=device)
        zeros_b = torch.zeros(self.space.beta_shape, device=device)
        return sample_paths(zeros_a, zeros_b, batch_size)

    # ------------------------------------------------------------------ forward
    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem_block(self.bn1(self.conv_stem(x)))

    def forward_stage(self, s: int, x: torch.Tensor, paths: PathWeights, *, all_paths: bool) -> torch.Tensor:
        depth_w = paths.depths[s]  # [B, n_depths]
        if all_paths:
            needed = self.space.max_depth
        else:
            needed = max(self.space.depths[b] for b in depth_w.argmax(dim=1).unique().tolist())
        outs = []
        for j in range(needed):
            x = self.stages[s][j](x, paths.blocks[s, j], all_paths=all_paths)
            outs.append(x)
        out = 0
        for b, depth in enumerate(self.space.depths):
            if depth <= needed:
                out = out + depth_w[:, b, None, None, None] * outs[depth - 1]
        return out

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act2(self.norm_head(self.conv_head(self.global_pool(self.head_block(x)))))
        x = self.flatten(x)
        if self.drop_rate > 0.0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return self.classifier(x)

    def forward(
        self,
        x: torch.Tensor,
        paths: PathWeights | None = None,
        *,
        all_paths: bool = False,
        return_features: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits of each sample along its path.

        Args:
            x: ``[B, C, H, W]`` images.
            paths: Per-sample path weights; default from :attr:`sampling`.
            all_paths: Run every option and depth and mix them by the weights (for architecture gradients).
            return_features: Also return every stage's output (for feature distillation).
        """
        if paths is None:
            paths = self.default_paths(x.shape[0], x.device)
        x = self.forward_stem(x)
        features = []
        for s in range(self.space.num_stages):
            x = self.forward_stage(s, x, paths, all_paths=all_paths)
            features.append(x)
        logits = self.forward_head(x)
        return (logits, features) if return_features else logits
