"""Closing the loop on the device: search, measure the chosen network, correct the prediction, search again.

Paper: HardCoRe-NAS (arXiv 2102.11646), section 3.3 / section 4: the expected latency is a sum of table entries, and
the original corrects it with an affine map of the fixed term (``--latency_corrective_slope/intercept``, meant to be
fitted by linear regression on measured networks) that the search then has to respect. A table's sum can miss a whole
network's measured latency by tens of percent on a busy CPU (cache effects between blocks, framework overhead), so
a constraint that holds on the prediction does not by itself hold on the device.

:func:`closed_loop_search` runs :func:`~miil.hardcore.search.hardcore_search`, builds the chosen network (timm
``MobileNetV3`` at the table's resolution), and measures it end to end with the table's own protocol
(:mod:`~miil.hardcore.latency`). If the measured latency exceeds the target, the table's calibration
``measured ~= slope * raw + intercept`` is refitted on the networks measured so far (least squares over the missed
networks and the table's lightest network, measured once on the first miss so that the line reaches down to where
the low targets lie), and its intercept is raised until no network that missed is predicted below its measurement;
the search then runs again with the corrected table. A network that missed is thus predicted above the target from
then on and cannot be chosen again (nor can its neighbours of about the same table sum). A miss is confirmed by a
second measurement (the faster one counts: interference from other work only adds time). The loop stops when the
measured latency meets the target; when the corrected table puts every network above the target, in which case the
lightest network's measurement decides (it is returned if it meets the target, else the target is out of reach on
this device); or after ``max_rounds`` searches. The result says which.

Under ``torchrun`` the measurement runs on rank 0 and its value is shared, so every rank takes the same decision.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from miil.core import distributed as du

from .builder import build_child
from .calibrate import table_timing
from .frank_wolfe import InfeasibleConstraintError
from .latency import TimingConfig, measure_network_latency
from .latency_table import LatencyTable
from .search import SearchResult, hardcore_search
from .search_space import Architecture
from .supernet import HardCoReSupernet

__all__ = ["ClosedLoopResult", "closed_loop_search", "conservative_calibration"]


@dataclass
class ClosedLoopResult:
    """Outcome of a closed-loop search.

    Args:
        result: The last round's search result (its ``predicted_ms`` is under the last round's calibration).
        measured_ms: Measured latency of the chosen network (ms per sample, the table's protocol).
        met: Whether ``measured_ms <= target_ms``.
        rounds: One record per search round: the architecture, predicted and measured latency, the calibration used.
        table: The table with the final calibration (the one the last round searched with).
        seconds: Wall time of the whole loop, measurements included.
        stopped: Why the loop ended: ``"met"``, ``"max_rounds"`` or ``"unreachable"`` (the corrected table puts
            every network above the target).
    """

    result: SearchResult
    measured_ms: float
    met: bool
    rounds: list[dict[str, Any]] = field(default_factory=list)
    table: LatencyTable | None = None
    seconds: float = 0.0
    stopped: str = "met"

    @property
    def architecture(self) -> Architecture:
        return self.result.architecture

    @property
    def target_ms(self) -> float:
        return self.result.target_ms

    def to_dict(self, space) -> dict[str, Any]:
        return {
            **self.result.to_dict(space),
            "closed_loop": {
                "measured_ms": self.measured_ms,
                "met_on_device": self.met,
                "stopped": self.stopped,
                "rounds": self.rounds,
                "calibration": (
                    {"slope": self.table.slope, "intercept": self.table.intercept} if self.table is not None else None
                ),
                "seconds": self.seconds,
            },
        }


def conservative_calibration(
    raw: np.ndarray, measured: np.ndarray, covered: np.ndarray | None = None
) -> tuple[float, float]:
    """``(slope, intercept)`` of ``measured ~= slope * raw + intercept`` that under-predicts none of ``covered``.

    A least-squares line over every network (a pure offset when the raw sums do not spread, or when the fitted slope
    is not positive), whose intercept is then raised by the largest amount a covered network's measurement exceeds it.

    Args:
        raw: Uncalibrated table sums of the measured networks (ms).
        measured: Their measured latencies (ms).
        covered: Boolean mask of the networks that must not be under-predicted (default: all).
    """
    raw, measured = np.asarray(raw, dtype=np.float64), np.asarray(measured, dtype=np.float64)
    if raw.shape != measured.shape or raw.size == 0:
        raise ValueError(f"need matching, non-empty raw and measured latencies, got {raw.shape} and {measured.shape}")
    covered = np.ones(raw.shape, dtype=bool) if covered is None else np.asarray(covered, dtype=bool)
    slope, intercept = 1.0, float(np.mean(measured - raw))
    if raw.size >= 2 and np.ptp(raw) > 1e-9 * max(1.0, float(np.max(np.abs(raw)))):
        fit_slope, fit_intercept = np.polyfit(raw, measured, 1)
        if fit_slope > 0:
            slope, intercept = float(fit_slope), float(fit_intercept)
    if covered.any():
        intercept += max(0.0, float(np.max((measured - (slope * raw + intercept))[covered])))
    return slope, intercept


def _measure_on_rank0(table: LatencyTable, arch: Architecture, timing: TimingConfig, num_classes: int) -> float:
    value = torch.zeros(1, dtype=torch.float64)
    if du.is_main_process():
        model = build_child(table.space, arch, num_classes=num_classes)
        value[0] = measure_network_latency(model, table.space, timing)
    if du.get_world_size() > 1:
        value = du.all_reduce_sum(value)  # only rank 0 contributed: every rank gets its measurement
    return float(value[0])


def closed_loop_search(
    supernet: HardCoReSupernet,
    table: LatencyTable,
    loader: Iterable,
    *,
    target_ms: float,
    max_rounds: int = 3,
    timing: TimingConfig | None = None,
    num_classes: int | None = None,
    progress: bool = True,
    **search_kwargs: Any,
) -> ClosedLoopResult:
    """HardCoRe search whose result is measured on this device and searched again with a corrected table on a miss.

    Args:
        supernet: The trained supernet (frozen during the searches).
        table: The latency table of this device (its calibration is the starting prediction).
        loader: Batches of held-out training images (cycled by every search).
        target_ms: Latency target ``T`` in ms per sample, to be met on the measured latency.
        max_rounds: Searches at most (the first included); ``1`` measures without correcting.
        timing: Timing protocol of the measurement; default the one stored in the table (so measured and predicted
            latency come from one protocol).
        num_classes: Classifier outputs of the measured network; default the supernet's.
        progress: Show the searches' progress bars.
        search_kwargs: Passed to :func:`~miil.hardcore.search.hardcore_search` (``steps``, ``gamma``, ``seed`` ...).
    """
    if max_rounds < 1:
        raise ValueError(f"max_rounds must be >= 1, got {max_rounds}")
    timing = timing or table_timing(table)
    num_classes = supernet.num_classes if num_classes is None else num_classes
    t0 = time.perf_counter()

    def measure(arch: Architecture) -> float:
        ms = _measure_on_rank0(table, arch, timing, num_classes)
        if ms > target_ms:  # confirm a miss: interference only ever adds time, so keep the faster of two
            ms = min(ms, _measure_on_rank0(table, arch, timing, num_classes))
        return ms

    archs: list[Architecture] = []
    measured: list[float] = []
    chosen: list[bool] = []  # networks a search chose (and that missed): the correction must cover them
    rounds: list[dict[str, Any]] = []
    current, searched, stopped = table, table, "max_rounds"
    for r in range(max_rounds):
        try:
            found = hardcore_search(supernet, current, loader, target_ms=target_ms, progress=progress, **search_kwargs)
        except InfeasibleConstraintError:
            if r == 0:
                raise  # the table as given already says the target is out of reach
            # The correction puts every network above the target; the lightest network's own measurement decides.
            lightest_ms = measured[0]
            record = {"round": r + 1, "unreachable": lightest_ms > target_ms, "lightest_measured_ms": lightest_ms}
            rounds.append(record)
            if lightest_ms > target_ms:
                stopped = "unreachable"
                break
            lightest = table.lightest()
            alpha, beta = table.space.alpha_beta(lightest)
            result = SearchResult("hardcore", lightest, float(target_ms), current.latency(lightest), alpha, beta, 0.0)
            ms, searched, stopped = lightest_ms, current, "met"
            record["arch_def"] = table.space.arch_def(lightest)
            break
        result, searched = found, current
        ms = measure(result.architecture)
        rounds.append(
            {
                "round": r + 1,
                "arch_def": current.space.arch_def(result.architecture),
                "predicted_ms": result.predicted_ms,
                "measured_ms": ms,
                "met": ms <= target_ms,
                "search_seconds": result.seconds,
                "slope": current.slope,
                "intercept": current.intercept,
            }
        )
        if ms <= target_ms:
            stopped = "met"
            break
        if r == max_rounds - 1:
            break
        if not archs:  # the first miss: anchor the fit at the lightest network, where low targets lie
            archs.append(table.lightest())
            measured.append(measure(archs[0]))
            chosen.append(False)
        archs.append(result.architecture)
        measured.append(ms)
        chosen.append(True)
        raw = np.array([table.raw_latency(a) for a in archs])
        current = table.with_calibration(*conservative_calibration(raw, np.array(measured), np.array(chosen)))
    return ClosedLoopResult(result, ms, stopped == "met", rounds, searched, time.perf_counter() - t0, stopped)
