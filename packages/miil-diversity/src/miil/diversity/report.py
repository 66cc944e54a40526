"""Transfer vs diversity and accuracy: the table and the plot.

Paper: "Diverse ImageNet Models Transfer Better" (arXiv 2204.09134 / WACV 2024) plots downstream results against
ImageNet accuracy and diversity, and argues that both together explain transferability. A record is one pretrained
model on one downstream task: its source accuracy, its diversity values and its transfer metric (the JSON that
``miil diversity transfer`` writes).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from miil.core.metrics import spearman

__all__ = ["correlations", "load_records", "plot_transfer", "report_table"]

DIVERSITY_KEYS = ("filter_diversity", "effective_rank", "feature_correlation")


def load_records(paths: Sequence[str | os.PathLike]) -> list[dict[str, Any]]:
    """Read transfer records (JSON files, or folders holding ``transfer.json``).

    Args:
        paths: Files or run folders.
    """
    records = []
    for path in paths:
        p = Path(path)
        p = p / "transfer.json" if p.is_dir() else p
        if not p.is_file():
            raise FileNotFoundError(f"transfer record {p} does not exist (run `miil diversity transfer` first)")
        try:
            record = json.loads(p.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{p} is not valid JSON: {err}") from None
        for key in ("name", "metric", "value"):
            if key not in record:
                raise ValueError(f"{p} lacks the field {key!r} of a transfer record")
        records.append(record)
    return records


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def report_table(records: Sequence[dict[str, Any]]) -> str:
    """A Markdown table: model, source accuracy, diversity values, transfer metric.

    Args:
        records: Transfer records.
    """
    head = ["model", "source top-1", *DIVERSITY_KEYS, "task", "transfer"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        div = r.get("diversity", {})
        cells = [r["name"], _fmt(r.get("source_top1")), *(_fmt(div.get(k)) for k in DIVERSITY_KEYS)]
        cells += [f"{r.get('mode', '?')} {r.get('task', '?')}", f"{r['metric']} {_fmt(r['value'])}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def correlations(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Spearman correlation of the transfer metric with source accuracy and each diversity value (>= 3 records).

    Args:
        records: Transfer records of one task.
    """
    out: dict[str, float] = {}
    if len(records) < 3:
        return out
    target = torch.tensor([float(r["value"]) for r in records])
    columns = {"source_top1": [r.get("source_top1") for r in records]}
    columns |= {k: [r.get("diversity", {}).get(k) for r in records] for k in DIVERSITY_KEYS}
    for name, values in columns.items():
        if all(isinstance(v, int | float) and not math.isnan(v) for v in values):
            out[name] = float(spearman(torch.tensor(values, dtype=torch.float64), target.double()))
    return out


def plot_transfer(
    records: Sequence[dict[str, Any]], path: str | os.PathLike, *, diversity: str = "filter_diversity"
) -> Path:
    """Scatter the transfer metric against diversity and against source accuracy (two panels, one PNG).

    Args:
        records: Transfer records.
        path: Output image file.
        diversity: Which diversity value goes on the first panel's x axis.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    xs = {
        diversity: [r.get("diversity", {}).get(diversity) for r in records],
        "source top-1 (%)": [r.get("source_top1") for r in records],
    }
    ys = [float(r["value"]) for r in records]
    metric = records[0]["metric"] if records else "transfer"
    for ax, (label, values) in zip(axes, xs.items(), strict=True):
        for x, y, r in zip(values, ys, records, strict=True):
            if x is None:
                continue
            ax.scatter(x, y)
            ax.annotate(r["name"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel(f"transfer {metric} (%)")
        ax.grid(alpha=0.3)
    fig.suptitle("transfer vs diversity and source accuracy")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
