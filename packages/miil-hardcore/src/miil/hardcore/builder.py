"""Child networks of the search space as timm ``MobileNetV3`` models, and stand-alone blocks for latency tables.

Paper: HardCoRe-NAS (arXiv 2102.11646), section 3.1. A child is built exactly as timm builds ``hardcorenas_a`` ...
``hardcorenas_f``: a ``MobileNetV3`` from the decoded ``arch_def`` with a 32-channel stem (in the paper's space),
hard-swish as the default activation, and squeeze-excite with a ReLU reduction, a hard-sigmoid gate and channels
rounded to multiples of 8. The same settings build the single blocks that :mod:`miil.hardcore.latency` times, so a
table entry is the latency of exactly the module the child network runs.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn
from timm.layers import get_act_layer
from timm.models._efficientnet_blocks import SqueezeExcite
from timm.models._efficientnet_builder import EfficientNetBuilder, decode_arch_def, round_channels
from timm.models.mobilenetv3 import MobileNetV3

from .search_space import HARDCORENAS_ARCH_DEFS, Architecture, SearchSpace

__all__ = [
    "FixedHead",
    "FixedStem",
    "build_block",
    "build_child",
    "hardcore_se_layer",
    "resolve_architecture",
]


def hardcore_se_layer() -> partial:
    """Squeeze-excite of the space: ReLU after the reduction, hard-sigmoid gate, reduced channels rounded to 8."""
    return partial(SqueezeExcite, gate_layer="hard_sigmoid", force_act_layer=nn.ReLU, rd_round_fn=round_channels)


def _norm_layer(bn_momentum: float | None, bn_eps: float | None) -> partial:
    kw = {}
    if bn_momentum is not None:
        kw["momentum"] = bn_momentum
    if bn_eps is not None:
        kw["eps"] = bn_eps
    return partial(nn.BatchNorm2d, **kw)


def resolve_architecture(space: SearchSpace, arch: Architecture | str | list) -> Architecture:
    """An :class:`Architecture` from itself, a published name (``hardcorenas_a`` ...) or a timm ``arch_def``."""
    if isinstance(arch, Architecture):
        return space.validate(arch)
    if isinstance(arch, str) and arch in HARDCORENAS_ARCH_DEFS:
        return space.parse_arch_def(HARDCORENAS_ARCH_DEFS[arch])
    return space.parse_arch_def(arch)


def build_child(
    space: SearchSpace,
    arch: Architecture | str | list,
    *,
    num_classes: int = 1000,
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
    bn_momentum: float | None = None,
    bn_eps: float | None = None,
) -> MobileNetV3:
    """Build the timm ``MobileNetV3`` of an architecture of ``space``.

    Args:
        space: The search space (its stem, first block, head and input channels are used).
        arch: An :class:`Architecture`, a published name such as ``"hardcorenas_a"``, or a timm ``arch_def``.
        num_classes: Classifier outputs.
        drop_rate: Dropout before the classifier.
        drop_path_rate: Stochastic-depth rate (timm spreads it linearly over the blocks).
        bn_momentum: BatchNorm momentum (PyTorch convention); default PyTorch's.
        bn_eps: BatchNorm epsilon; default PyTorch's.
    """
    arch = resolve_architecture(space, arch)
    return MobileNetV3(
        block_args=decode_arch_def(space.arch_def(arch)),
        num_classes=num_classes,
        in_chans=space.in_chans,
        stem_size=space.stem_channels,
        num_features=space.num_features,
        norm_layer=_norm_layer(bn_momentum, bn_eps),
        act_layer=get_act_layer("hard_swish"),
        se_layer=hardcore_se_layer(),
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
    )


def build_block(space: SearchSpace, stage: int, index: int, option: int) -> nn.Module:
    """The stand-alone timm block that a child places at block ``index`` of ``stage`` with option ``option``."""
    geo = space.block_geometry(stage, index)
    builder = EfficientNetBuilder(
        output_stride=32,
        round_chs_fn=round_channels,
        se_from_exp=True,
        act_layer=get_act_layer("hard_swish"),
        norm_layer=nn.BatchNorm2d,
        se_layer=hardcore_se_layer(),
    )
    stages = builder(geo["in_channels"], decode_arch_def([[space.block_string(stage, index, option)]]))
    return stages[0][0]


class FixedStem(nn.Module):
    """The fixed part before the searched stages: stem conv + BN-act and the depthwise-separable block."""

    def __init__(self, model: MobileNetV3):
        super().__init__()
        self.conv_stem, self.bn1, self.block = model.conv_stem, model.bn1, model.blocks[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.bn1(self.conv_stem(x)))


class FixedHead(nn.Module):
    """The fixed part after the searched stages: 1x1 conv block, pooling, conv head, activation, classifier."""

    def __init__(self, model: MobileNetV3):
        super().__init__()
        self.block = model.blocks[-1]
        self.global_pool, self.conv_head, self.norm_head, self.act2 = (
            model.global_pool,
            model.conv_head,
            model.norm_head,
            model.act2,
        )
        self.flatten, self.classifier = model.flatten, model.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act2(self.norm_head(self.conv_head(self.global_pool(self.block(x)))))
        return self.classifier(self.flatten(x))
