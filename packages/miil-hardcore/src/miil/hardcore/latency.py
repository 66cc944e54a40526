"""Measuring latency on the user's device: one timing protocol for table entries and for whole networks.

Paper: HardCoRe-NAS (arXiv 2102.11646), section 3.3 and appendix (latency measurement). Backends:

- ``"cpu"``: PyTorch on the CPU with a set thread count (the paper's Xeon numbers are single-thread, batch 1);
- ``"cuda"``: PyTorch on a GPU timed with CUDA events;
- ``"onnx"``: the module exported to ONNX and run by ONNX Runtime on the CPU (``pip install miil-hardcore[onnx]``).

Every module is timed in eval mode under ``torch.inference_mode`` after warm-up runs; the statistic over the repeats
is the median (or the minimum / mean, see :class:`TimingConfig`), divided by the batch size (milliseconds per sample).
The same function times table entries and the child networks they predict, so predicted and measured latency come
from one protocol.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from miil.core.extras import require

from .builder import FixedHead, FixedStem, build_block, build_child
from .latency_table import POSITIONS, LatencyTable
from .search_space import SearchSpace

__all__ = [
    "BACKENDS",
    "TimingConfig",
    "describe_device",
    "measure_latency_table",
    "measure_network_latency",
    "time_module",
]

BACKENDS = ("cpu", "cuda", "onnx")
STATISTICS = {"median": statistics.median, "min": min, "mean": statistics.fmean}


@dataclass(frozen=True)
class TimingConfig:
    """How latency is measured.

    Args:
        backend: ``"cpu"``, ``"cuda"`` or ``"onnx"``.
        threads: CPU threads for the ``cpu`` and ``onnx`` backends (the paper: 1).
        batch_size: Samples per timed forward; results are per sample.
        warmup: Untimed forward passes before timing.
        repeats: Timed forward passes; the median is reported.
        device: CUDA device for the ``cuda`` backend.
        statistic: ``"median"`` (default), ``"min"`` (robust on a CPU shared with other jobs: preemption only ever
            adds time) or ``"mean"`` (the original's).
        clock: ``"wall"`` (default) or ``"thread_cpu"``: CPU time of the calling thread, which excludes time the
            process spends preempted by other jobs; only for the ``cpu`` backend with one thread, where all the work
            runs on the calling thread.
    """

    backend: str = "cpu"
    threads: int = 1
    batch_size: int = 1
    warmup: int = 10
    repeats: int = 50
    device: str = "cuda"
    statistic: str = "median"
    clock: str = "wall"

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"latency backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.threads < 1 or self.batch_size < 1 or self.warmup < 0 or self.repeats < 1:
            raise ValueError(f"timing needs threads, batch_size, repeats >= 1 and warmup >= 0, got {self}")
        if self.statistic not in STATISTICS:
            raise ValueError(f"latency statistic must be one of {tuple(STATISTICS)}, got {self.statistic!r}")
        if self.clock not in ("wall", "thread_cpu"):
            raise ValueError(f"latency clock must be 'wall' or 'thread_cpu', got {self.clock!r}")
        if self.clock == "thread_cpu" and (self.backend != "cpu" or self.threads != 1):
            raise ValueError("clock 'thread_cpu' measures one thread: use it with backend 'cpu' and threads=1")
        if self.backend == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("latency backend 'cuda' needs a CUDA device; none is available here")


@contextmanager
def _threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _cpu_model_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_device(timing: TimingConfig) -> dict:
    """What the measurement ran on: host CPU or GPU name, software versions, date (stored in the table)."""
    info = {
        "backend": timing.backend,
        "cpu": _cpu_model_name(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if timing.backend == "cuda":
        info["gpu"] = torch.cuda.get_device_name(torch.device(timing.device))
    if timing.backend == "onnx":
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    return info


def _time_torch_cpu(module: nn.Module, x: torch.Tensor, timing: TimingConfig) -> list[float]:
    clock = time.thread_time if timing.clock == "thread_cpu" else time.perf_counter
    times = []
    with _threads(timing.threads), torch.inference_mode():
        for i in range(timing.warmup + timing.repeats):
            t0 = clock()
            module(x)
            if i >= timing.warmup:
                times.append((clock() - t0) * 1e3)
    return times


def _time_torch_cuda(module: nn.Module, x: torch.Tensor, timing: TimingConfig) -> list[float]:
    device = torch.device(timing.device)
    module, x = module.to(device), x.to(device)
    times = []
    with torch.inference_mode():
        for _ in range(timing.warmup):
            module(x)
        torch.cuda.synchronize(device)
        for _ in range(timing.repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            module(x)
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end))
    return times


def _time_onnx(module: nn.Module, x: torch.Tensor, timing: TimingConfig) -> list[float]:
    with require("onnxruntime", distribution="miil-hardcore", extra="onnx", purpose="latency backend 'onnx'"):
        import onnxruntime as ort
    with tempfile.TemporaryDirectory(prefix="miil-hardcore-onnx-") as tmp:
        path = os.path.join(tmp, "module.onnx")
        with contextlib.redirect_stdout(io.StringIO()):  # the exporter narrates every pass
            torch.onnx.export(
                module, (x,), path, input_names=["x"], output_names=["y"], external_data=False, verbose=False
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = timing.threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    times = []
    for i in range(timing.warmup + timing.repeats):
        t0 = time.perf_counter()
        session.run(None, feed)
        if i >= timing.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return times


def time_module(module: nn.Module, input_shape: tuple[int, ...], timing: TimingConfig) -> float:
    """Median latency of ``module`` in milliseconds per sample.

    Args:
        module: The module (put in eval mode; moved to the GPU for the ``cuda`` backend).
        input_shape: Shape of one sample, without the batch dimension.
        timing: The timing protocol.
    """
    module = module.eval()
    x = torch.randn(timing.batch_size, *input_shape)
    if timing.backend == "cpu":
        times = _time_torch_cpu(module, x, timing)
    elif timing.backend == "cuda":
        times = _time_torch_cuda(module, x, timing)
    else:
        times = _time_onnx(module, x, timing)
    return STATISTICS[timing.statistic](times) / timing.batch_size


def measure_latency_table(
    space: SearchSpace,
    timing: TimingConfig | None = None,
    *,
    num_classes: int = 1000,
    progress: bool = True,
    callback: Callable[[int, int, str], None] | None = None,
) -> LatencyTable:
    """Time every block configuration and the fixed frame of ``space`` on this device.

    Args:
        space: The search space (its ``image_size`` sets the resolution of every entry).
        timing: The timing protocol (default: CPU, 1 thread, batch 1).
        num_classes: Classifier outputs of the head that is timed.
        progress: Show a tqdm bar.
        callback: Called as ``callback(done, total, name)`` after each measured entry.

    Returns:
        The table, with the device and protocol recorded.
    """
    timing = timing or TimingConfig()
    total = space.num_stages * len(POSITIONS) * space.num_options + 2
    bar = tqdm(total=total, desc="latency table", disable=not progress, dynamic_ncols=True)
    done = 0

    def tick(name: str) -> None:
        nonlocal done
        done += 1
        bar.update(1)
        bar.set_postfix_str(name, refresh=False)
        if callback is not None:
            callback(done, total, name)

    torch.manual_seed(0)
    block_ms = np.zeros((space.num_stages, len(POSITIONS), space.num_options))
    for s in range(space.num_stages):
        for pos in range(len(POSITIONS)):
            geo = space.block_geometry(s, pos)
            shape = (geo["in_channels"], geo["resolution"], geo["resolution"])
            for c in range(space.num_options):
                block_ms[s, pos, c] = time_module(build_block(space, s, pos, c), shape, timing)
                tick(space.block_string(s, pos, c))
    frame = build_child(space, space.heaviest(), num_classes=num_classes)
    stem_shape = (space.in_chans, space.image_size, space.image_size)
    fixed = {"stem": time_module(FixedStem(frame), stem_shape, timing)}
    tick("stem")
    last = space.num_stages - 1
    res = space.block_geometry(last, 1)["resolution"]
    fixed["head"] = time_module(FixedHead(frame), (space.stages[-1].channels, res, res), timing)
    tick("head")
    bar.close()
    timing_info = {**asdict(timing), "num_classes": num_classes}
    return LatencyTable(space, block_ms, fixed, describe_device(timing), timing_info)


def measure_network_latency(model: nn.Module, space: SearchSpace, timing: TimingConfig | None = None) -> float:
    """Latency (ms per sample) of a whole network at the space's input size, with the table's protocol."""
    return time_module(model, (space.in_chans, space.image_size, space.image_size), timing or TimingConfig())
