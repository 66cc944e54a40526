"""Inference throughput of timm models, measured the way USI's speed-accuracy comparisons measure it.

Paper: USI (arXiv 2204.03475), ``Speed_Accuracy_Comparisons.md``: every model is BN-fused and timed at
a fixed batch size (GPU: batch 256 with TensorRT fp16; CPU: batch 1 with OpenVINO). Here the timing is plain
PyTorch: BN fused (:func:`miil.usi.fuse_batchnorm`), channels-last memory format, optional ``torch.compile`` and
autocast, warm-up iterations excluded, CUDA synchronized around the timed loop. Absolute numbers therefore differ
from the paper's TensorRT/OpenVINO ones; the ranking of models on one machine is what the Pareto tool uses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from miil.core.backbones import create_backbone
from miil.core.distributed import resolve_device

from .fuse import fuse_batchnorm

__all__ = ["ThroughputResult", "measure_throughput"]


@dataclass
class ThroughputResult:
    """One throughput measurement.

    Args:
        model: Model name.
        images_per_s: Inference throughput.
        batch_size: Batch size used.
        img_size: Input side.
        device: Device string.
        params_m: Parameters in millions.
        bn_fused: Batch-norm pairs folded before timing.
        iterations: Timed forward passes.
        seconds: Time of the timed loop.
    """

    model: str
    images_per_s: float
    batch_size: int
    img_size: int
    device: str
    params_m: float
    bn_fused: int
    iterations: int
    seconds: float


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def measure_throughput(
    model: str | nn.Module,
    *,
    batch_size: int = 64,
    img_size: int | None = None,
    device: str | torch.device | None = "auto",
    fuse_bn: bool = True,
    channels_last: bool = True,
    compile: bool = False,
    amp: bool = False,
    warmup: int = 3,
    iters: int = 10,
    min_seconds: float = 0.5,
    name: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
) -> ThroughputResult:
    """Images per second of a model's forward pass (random weights suffice: speed does not depend on them).

    Args:
        model: timm model name or a module.
        batch_size: Images per forward pass.
        img_size: Input side (default: the model's timm config, else 224).
        device: "auto", "cpu", "cuda", "cuda:N".
        fuse_bn: Fold batch norms into convs first.
        channels_last: Channels-last memory format for model and input.
        compile: ``torch.compile`` the model (compilation happens during warm-up).
        amp: Autocast (fp16 on CUDA, bf16 on CPU).
        warmup: Untimed forward passes first.
        iters: Minimum timed forward passes.
        min_seconds: Keep timing until at least this long has passed.
        name: Name to report (default: the timm name or the class name).
        model_kwargs: Passed to ``timm.create_model`` for a name.
    """
    if batch_size < 1 or iters < 1 or warmup < 0:
        raise ValueError(f"need batch_size >= 1, iters >= 1, warmup >= 0; got {batch_size}, {iters}, {warmup}")
    dev = resolve_device(device)
    label = name or (model if isinstance(model, str) else type(model).__name__)
    net = create_backbone(model, **(model_kwargs or {})) if isinstance(model, str) else model
    if img_size is None:
        img_size = int((getattr(net, "pretrained_cfg", None) or {}).get("input_size", (3, 224, 224))[-1])
    net = net.to(dev).eval()
    x = torch.randn(batch_size, 3, img_size, img_size, device=dev)
    fused = 0
    if fuse_bn:
        with torch.no_grad():
            fused = len(fuse_batchnorm(net, x[:2].clone()).fused)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    run = torch.compile(net) if compile else net
    autocast = torch.autocast(dev.type, dtype=torch.float16 if dev.type == "cuda" else torch.bfloat16, enabled=amp)
    with autocast:
        for _ in range(max(warmup, 1 if compile else 0)):
            run(x)
        _sync(dev)
        count, start = 0, time.perf_counter()
        while count < iters or time.perf_counter() - start < min_seconds:
            run(x)
            count += 1
            if count % 5 == 0:
                _sync(dev)
        _sync(dev)
        seconds = time.perf_counter() - start
    return ThroughputResult(
        model=label,
        images_per_s=batch_size * count / seconds,
        batch_size=batch_size,
        img_size=img_size,
        device=str(dev),
        params_m=sum(p.numel() for p in net.parameters()) / 1e6,
        bn_fused=fused,
        iterations=count,
        seconds=seconds,
    )
