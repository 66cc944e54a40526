"""The elastic inverted-residual block of the HardCoRe-NAS supernet: all 12 options of one block in shared weights.

Paper: HardCoRe-NAS (arXiv 2102.11646), section 3.2 and appendix (one-shot model). One block holds:

- one point-wise expansion conv at the largest expansion, followed by a shared BN; an expansion ratio ``e`` uses the
  first ``make_divisible(in * e)`` channels (channel masking; the channels are ordered by Taylor importance, see
  :mod:`miil.hardcore.channel_ordering`, so the narrow options keep the most important ones);
- one depthwise conv + BN per kernel size;
- one squeeze-excite per expansion ratio (timm's ``SqueezeExcite`` at that width);
- one shared point-wise projection, used on the first channels only;
- one output BN per (expansion, SE) pair.

Each sample carries its own one-hot option weights (per-sample hard Gumbel sampling, "multipath"). With
``all_paths=False`` every sample runs only its chosen option, and samples are routed in groups, so training costs
about one path per sample. With ``all_paths=True`` every option runs for every sample and the outputs are mixed by
the weights; this is what the gradient with respect to the architecture variables needs (the search).

Depthwise conv, BN and the activation act per channel, so masking after them equals masking before them; the
option's output is therefore exactly that of the timm ``InvertedResidual`` sliced out by
:func:`miil.hardcore.extract.extract_child`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath, make_divisible

from .search_space import BlockChoice

__all__ = ["ElasticInvertedResidual"]


class ElasticInvertedResidual(nn.Module):
    """All options of one searched block with shared, sliced weights.

    Args:
        in_chs: Input channels.
        out_chs: Output channels.
        stride: Depthwise stride.
        options: The block options, in the search space's order.
        act_layer: Activation class of the block.
        se_layer: Squeeze-excite factory ``se_layer(channels, act_layer=...)``.
        drop_path_rate: Stochastic depth on the residual branch.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        stride: int,
        options: tuple[BlockChoice, ...],
        act_layer: type[nn.Module],
        se_layer,
        drop_path_rate: float = 0.0,
    ):
        super().__init__()
        self.options = tuple(options)
        self.expansions = tuple(sorted({o.expansion for o in options}))
        self.kernels = tuple(sorted({o.kernel for o in options}))
        self.se_values = tuple(sorted({o.se for o in options}))
        self.mid = tuple(make_divisible(in_chs * e) for e in self.expansions)
        max_mid = max(self.mid)
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride
        self.has_skip = in_chs == out_chs and stride == 1

        self.conv_pw = nn.Conv2d(in_chs, max_mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(max_mid)
        self.act = act_layer(inplace=True)
        self.conv_dw = nn.ModuleList(
            nn.Conv2d(max_mid, max_mid, k, stride=stride, padding=k // 2, groups=max_mid, bias=False)
            for k in self.kernels
        )
        self.bn2 = nn.ModuleList(nn.BatchNorm2d(max_mid) for _ in self.kernels)
        self.se = nn.ModuleList(se_layer(m, act_layer=act_layer) for m in self.mid) if True in self.se_values else None
        self.conv_pwl = nn.Conv2d(max_mid, out_chs, 1, bias=False)
        self.bn3 = nn.ModuleList(nn.BatchNorm2d(out_chs) for _ in range(len(self.expansions) * len(self.se_values)))
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate else nn.Identity()
        # option index -> (expansion index, kernel index, se index)
        self._parts = [
            (self.expansions.index(o.expansion), self.kernels.index(o.kernel), self.se_values.index(o.se))
            for o in self.options
        ]

    def option_parts(self, option: int) -> tuple[int, int, int]:
        """(expansion index, kernel index, SE index) of an option."""
        return self._parts[option]

    def bn3_index(self, ie: int, ise: int) -> int:
        return ie * len(self.se_values) + ise

    def _tail(self, g: torch.Tensor, ie: int, ise: int) -> torch.Tensor:
        """SE (if chosen), projection and output BN of the first ``mid[ie]`` channels of ``g``."""
        mid = self.mid[ie]
        z = g[:, :mid]
        if self.se_values[ise]:
            z = self.se[ie](z)
        y = F.conv2d(z, self.conv_pwl.weight[:, :mid])
        return self.bn3[self.bn3_index(ie, ise)](y)

    def _dw(self, h: torch.Tensor, ik: int) -> torch.Tensor:
        return self.act(self.bn2[ik](self.conv_dw[ik](h)))

    def forward(self, x: torch.Tensor, weights: torch.Tensor, *, all_paths: bool = False) -> torch.Tensor:
        """Run the block.

        Args:
            x: ``[B, in, H, W]`` input.
            weights: ``[B, options]`` per-sample option weights (one-hot, possibly straight-through).
            all_paths: Run every option for every sample and mix by ``weights`` (architecture gradients).
        """
        h = self.act(self.bn1(self.conv_pw(x)))
        if all_paths:
            out = 0
            for ik in range(len(self.kernels)):
                g = self._dw(h, ik)
                for o, (ie, ok, ise) in enumerate(self._parts):
                    if ok == ik:
                        out = out + weights[:, o, None, None, None] * self._tail(g, ie, ise)
        else:
            out = self._routed(h, weights)
        if self.has_skip:
            out = self.drop_path(out) + x
        return out

    def _routed(self, h: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        choice = weights.argmax(dim=1)
        scale = weights.gather(1, choice[:, None])[:, :, None, None]
        parts = torch.tensor(self._parts, device=choice.device)[choice]  # [B, 3]
        kernels = parts[:, 1].unique().tolist()
        if len(kernels) == 1:
            g = self._dw(h, kernels[0])
        else:
            g = None
            for ik in kernels:
                rows = (parts[:, 1] == ik).nonzero().squeeze(1)
                gk = self._dw(h.index_select(0, rows), ik)
                g = gk.new_zeros((h.shape[0], *gk.shape[1:])) if g is None else g
                g = g.index_copy(0, rows, gk)
        groups = (parts[:, 0] * len(self.se_values) + parts[:, 2]).unique().tolist()
        if len(groups) == 1:
            ie, ise = divmod(groups[0], len(self.se_values))
            return self._tail(g, ie, ise) * scale
        out = None
        for grp in groups:
            ie, ise = divmod(grp, len(self.se_values))
            rows = ((parts[:, 0] == ie) & (parts[:, 2] == ise)).nonzero().squeeze(1)
            y = self._tail(g.index_select(0, rows), ie, ise)
            out = y.new_zeros((h.shape[0], *y.shape[1:])) if out is None else out
            out = out.index_copy(0, rows, y)
        return out * scale
