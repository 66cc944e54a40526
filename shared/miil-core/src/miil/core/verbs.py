"""What every ``validate`` and ``infer`` verb does around its model: the dialect's options applied to
:func:`miil.core.evaluate.evaluate`, image inputs under the bad-input contract, and the report and exit status.

Not part of a paper. A verb whose parser has the options of :func:`miil.core.cli_args.add_eval_args` (``--device``,
``--amp`` / ``--amp-dtype``, ``--batch-size``, ``--num-workers``, ``--progress``, ``--strict``, ``--json``) calls
:func:`run_evaluation` (validate) or :func:`predict_images` (infer), then :func:`finish`, whose return value is the
command's exit status (0, or 3 when inputs were skipped).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from . import distributed as du
from .data.inputs import ImageFilesDataset, list_inputs
from .data.unreadable import Skipped
from .evaluate import (
    EvalReport,
    PredictionMeter,
    choose_precision,
    evaluate,
    exit_status,
    print_skipped_summary,
    write_json,
)

__all__ = ["finish", "predict_images", "run_evaluation"]


def run_evaluation(
    args: argparse.Namespace,
    model: nn.Module,
    data: Dataset,
    *,
    stored_precision: str | None,
    meter: Any | None = None,
    eval_fn: Callable[[nn.Module, Any], tuple[torch.Tensor, Any]] | None = None,
    desc: str = "validate",
) -> EvalReport:
    """:func:`~miil.core.evaluate.evaluate` with a verb's options; the model must already be on ``args.device``.

    Args:
        args: The parsed options (``add_eval_args``).
        model: The trained model.
        data: The dataset (samples may be ``Skipped`` records).
        stored_precision: The ``eval_precision`` of the weights' sidecar: the default unless ``--amp`` is given.
        meter: The task's meter.
        eval_fn: ``eval_fn(model, batch) -> (outputs, targets)``.
        desc: Label of the progress bar.
    """
    device = next(iter(model.parameters())).device
    return evaluate(
        model,
        data,
        meter=meter,
        eval_fn=eval_fn,
        device=device,
        precision=choose_precision(stored_precision, amp=args.amp, amp_dtype=args.amp_dtype, device=device),
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        progress=args.progress,
        desc=desc,
    )


def predict_images(
    args: argparse.Namespace,
    model: nn.Module,
    transform: Callable,
    *,
    stored_precision: str | None,
    eval_fn: Callable[[nn.Module, Any], tuple[torch.Tensor, Any]] | None = None,
) -> tuple[list[Path], torch.Tensor, list[int], EvalReport]:
    """The model's outputs for ``args.inputs`` (image files and folders), unreadable ones skipped and reported.

    Returns:
        ``(input files, outputs of the readable ones, their indices into the files, the report)``; the outputs are
        complete on rank 0 (gathered over ranks), in input order.
    """
    files = list_inputs(args.inputs)
    meter = PredictionMeter()
    dataset = ImageFilesDataset(files, transform, strict=args.strict)
    report = run_evaluation(
        args, model, dataset, stored_precision=stored_precision, meter=meter, eval_fn=eval_fn, desc="infer"
    )
    outputs, index = meter.predictions()
    return files, outputs, index.tolist(), report


def finish(
    prog: str,
    outcome: EvalReport | Sequence[Skipped],
    json_path: str | None = None,
    payload: dict[str, Any] | None = None,
) -> int:
    """End a verb: the skipped-inputs summary, the ``--json`` report (rank 0, never NaN), and the exit status.

    Args:
        prog: The command (``miil csl validate``), for the summary line.
        outcome: What :func:`run_evaluation` / :func:`predict_images` reported (its metrics, samples, precision and
            skipped inputs go into the report), or the skipped inputs of a command that evaluates nothing.
        json_path: ``--json``; nothing is written without it.
        payload: The verb's own part of the report (weights, data, predictions, ...).
    """
    report = outcome.as_dict() if isinstance(outcome, EvalReport) else {}
    skipped = list(outcome.skipped if isinstance(outcome, EvalReport) else outcome)
    print_skipped_summary(skipped, prog=prog)
    if json_path and du.is_main_process():
        write_json(json_path, {**(payload or {}), **report, "skipped": [s.as_dict() for s in skipped]})
    return exit_status(skipped)
