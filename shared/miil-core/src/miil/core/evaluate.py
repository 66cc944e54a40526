"""One evaluation loop for validation inside training, ``validate`` and ``infer`` in every package.

``evaluate`` runs a model over a dataset (or a ready DataLoader) with a progress bar on rank 0, feeds a meter, adds
the mean loss, counts the samples that were really scored, and collects the inputs that could not be read (the
:class:`~miil.core.data.Skipped` records a dataset returns in place of a sample). Under torchrun each rank scores a
disjoint shard of the dataset (every sample exactly once) and the counts, losses, skipped inputs and the meter's
metrics are reduced over all ranks, so every rank returns the same report.

Precision is explicit and the same everywhere: ``precision`` is "fp32", "bf16" or "fp16" (autocast). The engine
stores the precision it evaluated with in the run, and the packages' ``validate`` verbs use it by default, so the
metric that picks the best checkpoint is the metric ``validate`` reports for it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from . import distributed as du
from .data.unreadable import Skipped, SkippingCollate
from .errors import EXIT_OK, EXIT_SKIPPED_INPUTS
from .io import atomic_write_text

__all__ = [
    "PRECISIONS",
    "EvalReport",
    "PredictionMeter",
    "ShardSampler",
    "autocast",
    "choose_precision",
    "evaluate",
    "exit_status",
    "gather_skipped",
    "json_safe",
    "precision_of",
    "print_skipped_summary",
    "to_device",
    "write_json",
]

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def precision_of(dtype: torch.dtype | None) -> str:
    """The precision name ("fp32", "bf16", "fp16") of an autocast dtype (``None``: no autocast)."""
    for name, value in PRECISIONS.items():
        if value == dtype:
            return name
    raise ValueError(f"no precision name for dtype {dtype}")


def choose_precision(
    stored: str | None, *, amp: bool | None = None, amp_dtype: str = "auto", device: torch.device | str = "cpu"
) -> str:
    """The precision a ``validate`` / ``infer`` verb runs in: the run's own unless ``--amp`` says otherwise.

    Args:
        stored: The ``eval_precision`` of the run's sidecar (``None`` for weights without one: fp32).
        amp: ``--amp``: ``None`` (not given) keeps ``stored``; ``False`` is fp32; ``True`` is ``amp_dtype``.
        amp_dtype: "bfloat16", "float16", or "auto" (fp16 on CUDA, bf16 elsewhere: asked for explicitly).
        device: Where the model runs.
    """
    if amp is None:
        name = stored or "fp32"
        if name not in PRECISIONS:
            raise ValueError(f"unknown stored eval_precision {name!r}; expected one of {sorted(PRECISIONS)}")
        return name
    if not amp:
        return "fp32"
    names = {"bfloat16": "bf16", "bf16": "bf16", "float16": "fp16", "fp16": "fp16"}
    if amp_dtype == "auto":
        return "fp16" if torch.device(device).type == "cuda" else "bf16"
    if amp_dtype not in names:
        raise ValueError(f"amp_dtype must be auto, bfloat16 or float16, got {amp_dtype!r}")
    return names[amp_dtype]


def autocast(device: torch.device, precision: str | None):
    """Autocast context for ``precision`` on ``device`` ("fp32" or None: none)."""
    if precision not in PRECISIONS and precision is not None:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    dtype = PRECISIONS.get(precision or "fp32")
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


class ShardSampler(Sampler[int]):
    """Every ``world``-th index from ``rank``, no padding: each sample is seen exactly once over all ranks.

    Args:
        n: Dataset length.
        rank: This process's rank (default: from torch.distributed).
        world: Number of processes (default: from torch.distributed).
    """

    def __init__(self, n: int, rank: int | None = None, world: int | None = None):
        rank = du.get_rank() if rank is None else rank
        world = du.get_world_size() if world is None else world
        self.indices = list(range(rank, n, world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def to_device(batch: Any, device: torch.device) -> Any:
    """Move the tensors of a (nested list / tuple / dict) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def _default_eval_fn(model: nn.Module, batch: Any) -> tuple[torch.Tensor, Any]:
    return model(batch[0]), batch[1]


def gather_skipped(skipped: Sequence[Skipped]) -> list[Skipped]:
    """Every rank's skipped inputs (identical on all ranks), each file once, in a stable order."""
    items = list(skipped)
    if du.is_distributed():
        parts: list[Any] = [None] * du.get_world_size()
        torch.distributed.all_gather_object(parts, [s.as_dict() for s in items])
        items = [Skipped(**d) for part in parts for d in part]
    unique = {s.file: s for s in items}
    return [unique[f] for f in sorted(unique)]


@dataclass
class EvalReport:
    """What :func:`evaluate` measured (identical on every rank).

    Args:
        metrics: The meter's metrics, plus ``loss`` when a loss function was given.
        samples: Samples scored (unreadable inputs are not samples).
        skipped: The inputs that could not be read (each file once).
        precision: The precision the model ran in.
        skipped_count: How many samples were skipped (also those a dataset returned as a bare ``None``).
    """

    metrics: dict[str, float]
    samples: int
    skipped: list[Skipped] = field(default_factory=list)
    precision: str = "fp32"
    skipped_count: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: metrics, counts and the skipped inputs with their reasons."""
        return {
            "metrics": self.metrics,
            "samples": self.samples,
            "skipped_count": self.skipped_count,
            "skipped": [s.as_dict() for s in self.skipped],
            "precision": self.precision,
        }


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Dataset | DataLoader,
    *,
    meter: Any | None = None,
    eval_fn: Callable[[nn.Module, Any], tuple[torch.Tensor, Any]] | None = None,
    loss_fn: Callable[[torch.Tensor, Any], torch.Tensor] | None = None,
    device: torch.device | str | None = None,
    precision: str | None = "fp32",
    batch_size: int = 64,
    num_workers: int = 0,
    collate_fn: Callable | None = None,
    progress: bool = True,
    desc: str = "validate",
) -> EvalReport:
    """Score ``model`` on ``data`` once, over all ranks.

    Args:
        model: The model; put in eval mode for the loop and restored afterwards.
        data: A map-style dataset (sharded over ranks here; samples may be ``Skipped`` records) or a DataLoader whose
            collate returns ``(batch, skipped)`` (a :class:`~miil.core.data.SkippingCollate`) or plain batches.
        meter: ``reset/update(outputs, targets)/compute()`` (e.g. ``MeanAPMeter``); its ``compute`` is collective.
        eval_fn: ``eval_fn(model, batch) -> (outputs, targets)``; default ``model(batch[0]), batch[1]``.
        loss_fn: Adds the mean ``loss`` over samples (computed in float32 on the outputs).
        device: Where the model runs (default: the model's device).
        precision: "fp32", "bf16" or "fp16" (autocast).
        batch_size: Batch size when ``data`` is a dataset.
        num_workers: Loader workers when ``data`` is a dataset.
        collate_fn: Collate of the readable samples when ``data`` is a dataset.
        progress: tqdm bar on rank 0.
        desc: Label of the bar.
    """
    if device is None:
        param = next(iter(model.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    if isinstance(data, DataLoader):
        loader = data
    else:
        loader = DataLoader(
            data,
            batch_size=batch_size,
            sampler=ShardSampler(len(data)),
            num_workers=num_workers,
            collate_fn=SkippingCollate(collate_fn),
            pin_memory=device.type == "cuda",
        )
    eval_fn = eval_fn or _default_eval_fn
    was_training = model.training
    model.eval()
    if meter is not None:
        meter.reset()
    loss_sum = torch.zeros((), dtype=torch.float64)
    count = 0
    skipped: list[Skipped] = []
    bar = tqdm(
        total=len(loader), desc=desc, leave=False, dynamic_ncols=True, disable=not progress or not du.is_main_process()
    )
    try:
        for item in loader:
            bar.update(1)
            batch = item
            if isinstance(loader.collate_fn, SkippingCollate):
                batch, bad = item
                skipped += bad
            if batch is None:
                continue
            batch = to_device(batch, device)
            with autocast(device, precision):
                outputs, targets = eval_fn(model, batch)
            outputs = outputs.float()
            if meter is not None:
                meter.update(outputs, targets)
            if loss_fn is not None:
                loss_sum += float(loss_fn(outputs, targets)) * len(outputs)
            count += len(outputs)
    finally:
        bar.close()
        model.train(was_training)
    totals = du.all_reduce_sum(torch.tensor([loss_sum.item(), count, len(skipped)], dtype=torch.float64))
    metrics: dict[str, float] = {}
    if meter is not None and totals[1] > 0:
        metrics.update(meter.compute())
    if loss_fn is not None and totals[1] > 0:
        metrics["loss"] = totals[0].item() / totals[1].item()
    return EvalReport(
        metrics, int(totals[1].item()), gather_skipped(skipped), precision or "fp32", int(totals[2].item())
    )


class PredictionMeter:
    """A meter for inference: keeps every output with its target (e.g. the sample index), gathered over ranks.

    ``compute()`` returns no metric; ``predictions()`` returns ``(outputs, targets)`` in the order of the targets when
    they are sample indices (``sort=True``).
    """

    def __init__(self) -> None:
        from .metrics import StoringMeter

        self._store = StoringMeter()

    def reset(self) -> None:
        self._store.reset()

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        self._store.update(outputs, torch.as_tensor(targets))

    def compute(self) -> dict[str, float]:
        return {}

    def predictions(self, *, sort: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        if not self._store._outputs and not du.is_distributed():
            return torch.zeros(0), torch.zeros(0, dtype=torch.long)
        outputs, targets = self._store.gathered()
        if sort:
            order = torch.argsort(targets.long(), stable=True)
            outputs, targets = outputs[order], targets[order]
        return outputs, targets


def json_safe(obj: Any) -> Any:
    """``obj`` with every NaN / infinity replaced by ``None`` and tensors / numpy scalars turned into numbers."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return json_safe(obj.tolist())
    if hasattr(obj, "item") and callable(obj.item) and not isinstance(obj, str | bytes):
        try:
            obj = obj.item()
        except (TypeError, ValueError):
            return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as strict JSON (no NaN: ``null`` instead) atomically."""
    atomic_write_text(path, json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n")


def print_skipped_summary(skipped: Iterable[Skipped], *, prog: str = "miil") -> None:
    """One summary line on rank 0 when inputs were skipped (each was already warned about as it was read)."""
    skipped = list(skipped)
    if skipped and du.is_main_process():
        print(
            f"{prog}: skipped {len(skipped)} unreadable input(s), not counted in the results "
            f"(first: {skipped[0].file}: {skipped[0].reason}); --strict stops at the first one",
            flush=True,
        )


def exit_status(skipped: Sequence[Skipped] | int) -> int:
    """The command's exit status: 0, or 3 when any input was skipped (a list of records or a count)."""
    return EXIT_SKIPPED_INPUTS if (skipped if isinstance(skipped, int) else len(skipped)) else EXIT_OK
