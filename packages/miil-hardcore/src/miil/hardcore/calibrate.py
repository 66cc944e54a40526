"""Predicted vs measured latency of random child networks, and the affine calibration of a table.

Paper: HardCoRe-NAS (arXiv 2102.11646), section 4 / appendix: the expected-latency formula is validated against
measured networks (the original's ``--latency_corrective_slope/intercept``). Here random architectures are built as
timm ``MobileNetV3`` children, timed with the table's own protocol, and compared with the table's prediction. A least
squares fit ``measured ~= slope * raw_prediction + intercept`` can be stored in the table, which keeps the expected
latency bilinear, so the hard constraint then holds for the calibrated prediction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from .builder import build_child
from .latency import TimingConfig, measure_network_latency
from .latency_table import LatencyTable
from .search_space import Architecture

__all__ = ["CalibrationReport", "calibrate_latency", "relative_errors", "table_timing"]

_TIMING_KEYS = ("backend", "threads", "batch_size", "warmup", "repeats", "device", "statistic", "clock")


def table_timing(table: LatencyTable) -> TimingConfig:
    """The timing protocol a table was measured with, to measure whole networks the same way."""
    return TimingConfig(**{k: v for k, v in table.timing.items() if k in _TIMING_KEYS})


def relative_errors(predicted: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """``|measured - predicted| / measured`` per network."""
    predicted, measured = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    return np.abs(measured - predicted) / measured


@dataclass
class CalibrationReport:
    """Predicted vs measured latency (ms per sample) of a set of networks, and the fitted calibration.

    Args:
        architectures: The networks measured.
        predicted: Predictions of the table as it was (with its calibration).
        raw: Uncalibrated sums of table entries.
        measured: Measured latencies.
        slope: Least-squares slope of measured on raw.
        intercept: Least-squares intercept (ms).
    """

    architectures: list[Architecture]
    predicted: np.ndarray
    raw: np.ndarray
    measured: np.ndarray
    slope: float
    intercept: float
    rows: list[dict] = field(default_factory=list)

    @property
    def mean_relative_error(self) -> float:
        return float(relative_errors(self.predicted, self.measured).mean())

    @property
    def calibrated_mean_relative_error(self) -> float:
        return float(relative_errors(self.slope * self.raw + self.intercept, self.measured).mean())


def calibrate_latency(
    table: LatencyTable,
    *,
    num_archs: int = 20,
    timing: TimingConfig | None = None,
    seed: int = 0,
    include_extremes: bool = True,
    progress: bool = True,
) -> CalibrationReport:
    """Measure random children with the table's protocol and fit ``measured ~= slope * raw + intercept``.

    Args:
        table: The latency table (its ``timing`` is reused unless ``timing`` is given).
        num_archs: Number of networks to measure.
        timing: Timing protocol; default the one stored in the table.
        seed: Seed of the random architectures.
        include_extremes: Also measure the table's lightest and heaviest networks (a wider range for the fit).
        progress: Show a tqdm bar.
    """
    if num_archs < 2:
        raise ValueError(f"calibration needs at least 2 networks, got {num_archs}")
    if timing is None:
        timing = table_timing(table)
    rng = np.random.default_rng(seed)
    archs = [table.lightest(), table.heaviest()] if include_extremes else []
    archs += [table.space.random_architecture(rng) for _ in range(num_archs - len(archs))]
    num_classes = int(table.timing.get("num_classes", 1000))
    measured = []
    for arch in tqdm(archs, desc="calibrate", disable=not progress):
        model = build_child(table.space, arch, num_classes=num_classes)
        measured.append(measure_network_latency(model, table.space, timing))
    measured = np.asarray(measured)
    raw = np.asarray([table.raw_latency(a) for a in archs])
    predicted = np.asarray([table.latency(a) for a in archs])
    slope, intercept = np.polyfit(raw, measured, 1) if np.ptp(raw) > 0 else (1.0, float(np.mean(measured - raw)))
    if slope <= 0:
        slope, intercept = 1.0, float(np.mean(measured - raw))
    rows = [
        {"arch_def": table.space.arch_def(a), "predicted_ms": float(p), "measured_ms": float(m)}
        for a, p, m in zip(archs, predicted, measured)
    ]
    return CalibrationReport(archs, predicted, raw, measured, float(slope), float(intercept), rows)
