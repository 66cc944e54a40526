"""Quantities that add up over the present blocks of a network: latency, parameters, FLOPs, accuracy contributions.

Paper: IQNAS / BINAS (arXiv 2110.12399), section 3. The expected latency of HardCoRe-NAS (arXiv 2102.11646,
section 3.3) and the accuracy estimator of IQNAS share one structure: a constant, one value per (stage, block,
option) counted when the block is present, and one value per (stage, depth). In the relaxed variables this is the
bilinear form ``constant + p^T alpha + r^T beta + alpha^T Q beta`` of :func:`miil.hardcore.bilinear_form`; in the
0/1 encoding of :mod:`miil.iqnas.encoding` it is linear, which makes the integer program a MILP.

Resource models: :func:`latency_costs` (a :class:`~miil.hardcore.LatencyTable`, ms per sample), :func:`parameter_costs`
and :func:`flop_costs` (counted on the timm blocks that :func:`miil.hardcore.build_block` builds, so they are exactly
those of the exported timm network).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from miil.hardcore import (
    Architecture,
    BilinearForm,
    FixedHead,
    FixedStem,
    LatencyTable,
    SearchSpace,
    bilinear_form,
    build_block,
    build_child,
)

from .encoding import encode, encode_many

__all__ = ["BlockAdditive", "flop_costs", "latency_costs", "parameter_costs"]


@dataclass(frozen=True, eq=False)
class BlockAdditive:
    """``f(arch) = constant + sum_{present blocks} block[s, j, c] + sum_s depth[s, depth index]``.

    Args:
        space: The search space.
        constant: The value of the fixed frame (``t_fixed`` for latency, the base accuracy for the estimator).
        block: ``[stages, max depth, options]`` value of every block option, counted when the block is present.
        depth: ``[stages, depths]`` value of every stage depth.
        name: What it measures (``"latency"``, ``"params"``, ``"accuracy"``...).
        unit: Its unit (``"ms"``, ``"M"``, ``"%"``...).
    """

    space: SearchSpace
    constant: float
    block: np.ndarray
    depth: np.ndarray
    name: str = ""
    unit: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self):
        block = np.asarray(self.block, dtype=np.float64)
        depth = np.asarray(self.depth, dtype=np.float64)
        if block.shape != self.space.alpha_shape:
            raise ValueError(
                f"{self.name or 'form'}: block values have shape {block.shape}, need {self.space.alpha_shape}"
            )
        if depth.shape != self.space.beta_shape:
            raise ValueError(
                f"{self.name or 'form'}: depth values have shape {depth.shape}, need {self.space.beta_shape}"
            )
        if not (np.all(np.isfinite(block)) and np.all(np.isfinite(depth)) and np.isfinite(self.constant)):
            raise ValueError(f"{self.name or 'form'}: values must be finite")
        object.__setattr__(self, "block", block)
        object.__setattr__(self, "depth", depth)
        object.__setattr__(self, "constant", float(self.constant))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, BlockAdditive)
            and (self.space, self.constant, self.name, self.unit)
            == (other.space, other.constant, other.name, other.unit)
            and np.array_equal(self.block, other.block)
            and np.array_equal(self.depth, other.depth)
        )

    __hash__ = None

    @property
    def coefficients(self) -> np.ndarray:
        """The linear coefficients over the encoding ``[x, beta]``."""
        return np.concatenate([self.block.reshape(-1), self.depth.reshape(-1)])

    def __call__(self, arch: Architecture) -> float:
        return float(self.constant + self.coefficients @ encode(self.space, arch))

    def values(self, archs: list[Architecture]) -> np.ndarray:
        """The value of each architecture."""
        return self.constant + encode_many(self.space, archs) @ self.coefficients

    def bilinear(self) -> BilinearForm:
        """The same function of the relaxed ``(alpha, beta)``: ``constant + p^T alpha + r^T beta + alpha^T Q beta``."""
        return bilinear_form(self.space, self.block, constant=self.constant, depth_values=self.depth)

    def bounds(self) -> tuple[float, float]:
        """``(min, max)`` over all architectures (exact: stages and blocks are independent given the depths)."""
        lo = hi = self.constant
        for s in range(self.space.num_stages):
            lo_s, hi_s = np.inf, -np.inf
            for b, d in enumerate(self.space.depths):
                blocks = self.block[s, :d]
                lo_s = min(lo_s, self.depth[s, b] + blocks.min(axis=1).sum())
                hi_s = max(hi_s, self.depth[s, b] + blocks.max(axis=1).sum())
            lo, hi = lo + lo_s, hi + hi_s
        return float(lo), float(hi)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "space": self.space.to_dict(),
            "constant": self.constant,
            "block": self.block.tolist(),
            "depth": self.depth.tolist(),
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "form") -> BlockAdditive:
        try:
            return cls(
                SearchSpace.from_dict(data["space"]),
                float(data["constant"]),
                np.asarray(data["block"], dtype=np.float64),
                np.asarray(data["depth"], dtype=np.float64),
                str(data.get("name", "")),
                str(data.get("unit", "")),
                dict(data.get("metadata", {})),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{source} is not a valid block-additive form: {err}") from None


def latency_costs(table: LatencyTable) -> BlockAdditive:
    """Predicted latency (ms per sample, calibrated) of the table's device as a :class:`BlockAdditive`."""
    space = table.space
    return BlockAdditive(space, table.t_fixed, table.costs(), np.zeros(space.beta_shape), "latency", "ms")


def _per_block(space: SearchSpace, measure) -> np.ndarray:
    out = np.zeros(space.alpha_shape)
    for s in range(space.num_stages):
        first = [measure(build_block(space, s, 0, c), s, 0) for c in range(space.num_options)]
        later = (
            [measure(build_block(space, s, 1, c), s, 1) for c in range(space.num_options)]
            if space.max_depth > 1
            else []
        )
        out[s, 0] = first
        out[s, 1:] = later
    return out


def parameter_costs(space: SearchSpace, *, num_classes: int = 1000) -> BlockAdditive:
    """Parameters (millions) of the timm network, as a :class:`BlockAdditive` (exact for every architecture)."""

    def count(module: torch.nn.Module, s: int, j: int) -> float:
        return sum(p.numel() for p in module.parameters()) / 1e6

    frame = build_child(space, space.heaviest(), num_classes=num_classes)
    fixed = count(FixedStem(frame), 0, 0) + count(FixedHead(frame), 0, 0)
    return BlockAdditive(space, fixed, _per_block(space, count), np.zeros(space.beta_shape), "params", "M")


def flop_costs(space: SearchSpace, *, num_classes: int = 1000) -> BlockAdditive:
    """FLOPs (millions, per image, as counted by ``torch.utils.flop_counter``: 2 per multiply-add of convolutions
    and linear layers) at the space's resolution, as a :class:`BlockAdditive`."""

    def flops(module: torch.nn.Module, shape: tuple[int, ...]) -> float:
        module.eval()
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            module(torch.zeros(shape))
        return counter.get_total_flops() / 1e6

    def block(module: torch.nn.Module, s: int, j: int) -> float:
        geo = space.block_geometry(s, j)
        return flops(module, (1, geo["in_channels"], geo["resolution"], geo["resolution"]))

    frame = build_child(space, space.heaviest(), num_classes=num_classes)
    size = space.image_size
    last = space.stages[-1].channels
    res = space.stage_input_resolution(space.num_stages)
    fixed = flops(FixedStem(frame), (1, space.in_chans, size, size)) + flops(FixedHead(frame), (1, last, res, res))
    return BlockAdditive(space, fixed, _per_block(space, block), np.zeros(space.beta_shape), "flops", "MFLOPs")
