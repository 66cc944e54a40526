"""Extracting a child network from the supernet: its weights sliced into a timm ``MobileNetV3``.

Paper: HardCoRe-NAS (arXiv 2102.11646), section 3.5 (the original's ``transform_model_to_mobilenet``). The frame is
copied; each chosen block takes the first ``mid`` channels of the shared expansion conv, BN and projection, the
depthwise conv and BN of its kernel, the squeeze-excite of its expansion and the output BN of its (expansion, SE).
The child computes exactly what the supernet computes along that path (eval mode), which the tests check.
"""

from __future__ import annotations

import torch
from timm.models.mobilenetv3 import MobileNetV3

from miil.core.io import load_into

from .builder import build_child
from .search_space import Architecture
from .supernet import HardCoReSupernet

__all__ = ["child_state_dict", "extract_child"]


def _bn(prefix: str, bn, n: int | None = None) -> dict[str, torch.Tensor]:
    sl = slice(None) if n is None else slice(0, n)
    return {
        f"{prefix}.weight": bn.weight[sl],
        f"{prefix}.bias": bn.bias[sl],
        f"{prefix}.running_mean": bn.running_mean[sl],
        f"{prefix}.running_var": bn.running_var[sl],
        f"{prefix}.num_batches_tracked": bn.num_batches_tracked,
    }


def child_state_dict(supernet: HardCoReSupernet, arch: Architecture) -> dict[str, torch.Tensor]:
    """The state dict of ``arch``'s timm ``MobileNetV3``, sliced from the supernet's weights (detached copies)."""
    space = supernet.space
    space.validate(arch)
    out: dict[str, torch.Tensor] = {}
    for name, module in (("conv_stem", supernet.conv_stem), ("bn1", supernet.bn1), ("conv_head", supernet.conv_head)):
        out.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
    out.update({f"blocks.0.0.{k}": v for k, v in supernet.stem_block.state_dict().items()})
    out.update({f"blocks.{space.num_stages + 1}.0.{k}": v for k, v in supernet.head_block.state_dict().items()})
    out.update({f"classifier.{k}": v for k, v in supernet.classifier.state_dict().items()})
    for s, options in enumerate(arch.blocks):
        for j, option in enumerate(options):
            block = supernet.stages[s][j]
            ie, ik, ise = block.option_parts(option)
            mid = block.mid[ie]
            pre = f"blocks.{s + 1}.{j}"
            out[f"{pre}.conv_pw.weight"] = block.conv_pw.weight[:mid]
            out.update(_bn(f"{pre}.bn1", block.bn1, mid))
            out[f"{pre}.conv_dw.weight"] = block.conv_dw[ik].weight[:mid]
            out.update(_bn(f"{pre}.bn2", block.bn2[ik], mid))
            if block.se_values[ise]:
                out.update({f"{pre}.se.{k}": v for k, v in block.se[ie].state_dict().items()})
            out[f"{pre}.conv_pwl.weight"] = block.conv_pwl.weight[:, :mid]
            out.update(_bn(f"{pre}.bn3", block.bn3[block.bn3_index(ie, ise)]))
    return {k: v.detach().clone() for k, v in out.items()}


def extract_child(
    supernet: HardCoReSupernet, arch: Architecture, *, drop_rate: float = 0.0, drop_path_rate: float = 0.0
) -> MobileNetV3:
    """Build ``arch`` as a timm ``MobileNetV3`` carrying the supernet's weights for that path (strict loading)."""
    child = build_child(
        supernet.space, arch, num_classes=supernet.num_classes, drop_rate=drop_rate, drop_path_rate=drop_path_rate
    )
    load_into(child, child_state_dict(supernet, arch))
    return child.to(next(supernet.parameters()).device)
