"""The latency lookup table: milliseconds per sample of every block configuration and of the fixed frame.

Paper: HardCoRe-NAS (arXiv 2102.11646), section 3.3 ("latency lookup table"). Every block configuration of the space
(stage, first-or-later position, option) is timed as a stand-alone module on the target device; the fixed parts (stem
with the first block, and the head with the classifier) are timed too, so the table predicts a whole network. The
original stored seconds (block entries per batch on GPU but the frame per sample) and left the head out; here every
entry is **milliseconds per sample**, the head is included, and the device, backend and timing protocol are stored
with the table.

A table may carry an affine calibration ``measured ~= slope * predicted + intercept`` fitted by
:func:`miil.hardcore.calibrate.calibrate_latency`; it keeps the expected latency bilinear (section 3.3).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from miil.core.io import atomic_write_text

from .search_space import Architecture, BlockChoice, SearchSpace

__all__ = ["FIXED_PARTS", "LatencyTable", "LatencyTableError"]

TABLE_FORMAT = "miil-hardcore-latency-table"
TABLE_VERSION = 1
UNITS = "ms per sample"
FIXED_PARTS = ("stem", "head")
POSITIONS = ("first", "later")


class LatencyTableError(ValueError):
    """A latency table file is malformed, incomplete, or belongs to another search space."""


@dataclass
class LatencyTable:
    """Latencies (ms per sample) of every block configuration and of the fixed frame of one search space.

    Args:
        space: The search space measured.
        block_ms: ``[stages, 2, options]``: position 0 is a stage's first block, position 1 every later block.
        fixed_ms: Latency of each fixed part (``"stem"``, ``"head"``).
        device: Description of the device, backend and software (free-form, stored in the file).
        timing: The timing protocol (backend, threads, batch size, warm-up, repeats, statistic).
        slope: Calibration slope applied to every prediction.
        intercept: Calibration intercept (ms) added to every prediction.
    """

    space: SearchSpace
    block_ms: np.ndarray
    fixed_ms: dict[str, float]
    device: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)
    slope: float = 1.0
    intercept: float = 0.0

    def __post_init__(self):
        self.block_ms = np.asarray(self.block_ms, dtype=np.float64)
        expected = (self.space.num_stages, len(POSITIONS), self.space.num_options)
        if self.block_ms.shape != expected:
            raise LatencyTableError(f"block_ms has shape {self.block_ms.shape}, the space needs {expected}")
        if not np.all(np.isfinite(self.block_ms)) or np.any(self.block_ms < 0):
            raise LatencyTableError("every block latency must be finite and >= 0")
        missing = [p for p in FIXED_PARTS if p not in self.fixed_ms]
        if missing:
            raise LatencyTableError(f"fixed_ms lacks {missing}")
        self.fixed_ms = {k: float(v) for k, v in self.fixed_ms.items()}
        if not math.isfinite(self.slope) or self.slope <= 0 or not math.isfinite(self.intercept):
            raise LatencyTableError(f"calibration needs a finite slope > 0, got {self.slope}, {self.intercept}")

    # ------------------------------------------------------------------ lookups
    def block_latency(self, stage: int, index: int, option: int) -> float:
        """Raw (uncalibrated) latency of block ``index`` of ``stage`` with option ``option``."""
        return float(self.block_ms[stage, 0 if index == 0 else 1, option])

    def costs(self) -> np.ndarray:
        """Calibrated cost of every block variable, ``[stages, max depth, options]`` (position by block index)."""
        pos = np.array([0] + [1] * (self.space.max_depth - 1))
        return self.slope * self.block_ms[:, pos, :]

    @property
    def t_fixed(self) -> float:
        """Calibrated latency of the fixed frame: ``slope * (stem + head) + intercept``."""
        return self.slope * sum(self.fixed_ms[p] for p in FIXED_PARTS) + self.intercept

    def raw_latency(self, arch: Architecture) -> float:
        """Sum of the table entries of the fixed parts and the chosen blocks (no calibration)."""
        self.space.validate(arch)
        total = sum(self.fixed_ms[p] for p in FIXED_PARTS)
        for s, blocks in enumerate(arch.blocks):
            total += sum(self.block_latency(s, j, c) for j, c in enumerate(blocks))
        return float(total)

    def latency(self, arch: Architecture) -> float:
        """Predicted latency (ms per sample) of ``arch``: calibrated sum of its table entries."""
        return self.slope * self.raw_latency(arch) + self.intercept

    def with_calibration(self, slope: float, intercept: float) -> LatencyTable:
        """A copy of the table with the calibration ``measured ~= slope * raw + intercept``."""
        return LatencyTable(
            self.space,
            self.block_ms.copy(),
            dict(self.fixed_ms),
            dict(self.device),
            dict(self.timing),
            slope,
            intercept,
        )

    def lightest(self) -> Architecture:
        """The cheapest architecture: minimal depth and the cheapest option at every position."""
        blocks = []
        for s in range(self.space.num_stages):
            blocks.append(
                tuple(int(np.argmin(self.block_ms[s, 0 if j == 0 else 1])) for j in range(self.space.min_depth))
            )
        return Architecture(tuple(blocks))

    def heaviest(self) -> Architecture:
        """The most expensive architecture under this table: maximal depth, the costliest option everywhere."""
        blocks = []
        for s in range(self.space.num_stages):
            blocks.append(
                tuple(int(np.argmax(self.block_ms[s, 0 if j == 0 else 1])) for j in range(self.space.max_depth))
            )
        return Architecture(tuple(blocks))

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        entries = []
        for s in range(self.space.num_stages):
            for pos, position in enumerate(POSITIONS):
                geo = self.space.block_geometry(s, pos)
                for c, choice in enumerate(self.space.options):
                    entries.append(
                        {
                            "stage": s,
                            "position": position,
                            **geo,
                            "expansion": choice.expansion,
                            "kernel": choice.kernel,
                            "se": choice.se,
                            "ms": float(self.block_ms[s, pos, c]),
                        }
                    )
        return {
            "format": TABLE_FORMAT,
            "version": TABLE_VERSION,
            "units": UNITS,
            "device": self.device,
            "timing": self.timing,
            "calibration": {"slope": self.slope, "intercept": self.intercept},
            "space": self.space.to_dict(),
            "fixed_ms": self.fixed_ms,
            "blocks": entries,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the table as JSON (atomically); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "latency table") -> LatencyTable:
        if data.get("format") != TABLE_FORMAT:
            raise LatencyTableError(f"{source} is not a miil-hardcore latency table (format {data.get('format')!r})")
        if data.get("units") != UNITS:
            raise LatencyTableError(f"{source} is in {data.get('units')!r}; expected {UNITS!r}")
        try:
            space = SearchSpace.from_dict(data["space"])
        except (KeyError, TypeError, ValueError) as err:
            raise LatencyTableError(f"{source} has no valid search space: {err}") from None
        block_ms = np.full((space.num_stages, len(POSITIONS), space.num_options), np.nan)
        for entry in data.get("blocks", []):
            try:
                s, pos = int(entry["stage"]), POSITIONS.index(entry["position"])
                c = space.option_index(BlockChoice(int(entry["expansion"]), int(entry["kernel"]), bool(entry["se"])))
                block_ms[s, pos, c] = float(entry["ms"])
            except (KeyError, ValueError, IndexError) as err:
                raise LatencyTableError(f"{source}: bad block entry {entry}: {err}") from None
        missing = np.argwhere(np.isnan(block_ms))
        if len(missing):
            s, pos, c = missing[0]
            raise LatencyTableError(
                f"{source} lacks {len(missing)} block entries, e.g. stage {s}, {POSITIONS[pos]} block, "
                f"option {space.options[c]}; measure it again with `miil hardcore lut`"
            )
        calib = data.get("calibration", {})
        try:
            return cls(
                space,
                block_ms,
                dict(data.get("fixed_ms", {})),
                dict(data.get("device", {})),
                dict(data.get("timing", {})),
                float(calib.get("slope", 1.0)),
                float(calib.get("intercept", 0.0)),
            )
        except LatencyTableError as err:
            raise LatencyTableError(f"{source}: {err}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> LatencyTable:
        """Read a table written by :meth:`save`; errors name the file and what is wrong."""
        from miil.core.errors import UserError
        from miil.core.io import load_file

        path = Path(path)
        if not path.exists():
            raise UserError(f"latency table {path} does not exist; measure one with `miil hardcore lut`")
        # load_file runs nothing a file carries (a pickled table is read with the restricted unpickler).
        data = load_file(path, what="latency table")
        if not isinstance(data, dict):
            raise LatencyTableError(f"latency table {path} is not a JSON object written by `miil hardcore lut`")
        if "format" not in data and "general" in data:
            raise LatencyTableError(
                f"{path} looks like the original code's lut.pkl: convert it with `miil hardcore import-lut {path} "
                "lut.json` first"
            )
        return cls.from_dict(data, source=str(path))
