"""``miil plot RUN_DIR``: a run's ``metrics.jsonl`` (one row per epoch, written by the engine) drawn into a PNG.

Panels: training loss (and validation loss when the meter reports one), learning rate, and one panel per validation
metric with the raw model's curve and the EMA model's curve. Rows may lack any key (an older run, a run without
validation or EMA); what is missing is simply not drawn. matplotlib runs with the Agg backend (no display needed).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from .errors import UserError

__all__ = ["plot_run", "read_metrics"]

_NOT_METRICS = {"images", "samples", "skipped", "skipped_unreadable"}  # counts, not curves


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl`` file; blank lines are ignored, a broken line is an error naming its number."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no metrics file {path}: give a run folder written by a train verb (it holds metrics.jsonl)")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path} line {number} is not JSON ({err.msg})") from None
        if isinstance(row, dict):
            rows.append(row)
    if not rows:
        raise UserError(f"{path} has no epoch rows yet; plot the run after its first epoch")
    return rows


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def _series(rows: list[dict[str, Any]], *keys: str) -> list[float]:
    out = []
    for row in rows:
        value: Any = row
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        out.append(_number(value))
    return out


def plot_run(run_dir: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    """Draw loss, learning rate and validation metrics per epoch of a run into a PNG.

    Args:
        run_dir: The run folder (or its ``metrics.jsonl`` file).
        output: The PNG to write (default: ``metrics.png`` in the run folder).

    Returns:
        The path of the written PNG.
    """
    run = Path(run_dir)
    metrics_file = run if run.is_file() else run / "metrics.jsonl"
    rows = read_metrics(metrics_file)
    out = Path(output) if output is not None else metrics_file.parent / "metrics.png"

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [int(r["epoch"]) + 1 if isinstance(r.get("epoch"), int) else i + 1 for i, r in enumerate(rows)]
    metric_names: list[str] = []
    for row in rows:
        for source in ("val", "val_ema"):
            for name, value in (row.get(source) or {}).items():
                if name not in metric_names and name not in _NOT_METRICS and name != "loss" and _is_number(value):
                    metric_names.append(name)
    panels: list[tuple[str, list[tuple[str, list[float], str]]]] = [
        ("loss", [("train", _series(rows, "train_loss"), "-"), ("val", _series(rows, "val", "loss"), "--")]),
        ("learning rate", [("lr", _series(rows, "lr"), "-")]),
    ]
    for name in metric_names:
        panels.append(
            (f"val {name}", [("raw", _series(rows, "val", name), "-"), ("EMA", _series(rows, "val_ema", name), "--")])
        )
    panels = [(t, [c for c in curves if any(not math.isnan(v) for v in c[1])]) for t, curves in panels]
    panels = [p for p in panels if p[1]]
    if not panels:
        raise UserError(f"{metrics_file} has no loss, lr or validation metric to draw")

    cols = min(3, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.2 * nrows), squeeze=False)
    for ax, (title, curves) in zip(axes.flat, panels):
        for label, values, style in curves:
            ax.plot(epochs, values, style, marker="o", markersize=3, label=label)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if len(curves) > 1:
            ax.legend()
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(str(metrics_file.parent.name or metrics_file.parent))
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _is_number(value: Any) -> bool:
    return not math.isnan(_number(value))
