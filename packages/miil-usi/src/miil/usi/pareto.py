"""Speed-accuracy Pareto front: which models are not beaten on both throughput and accuracy.

Paper: USI (arXiv 2204.03475) and its ``Speed_Accuracy_Comparisons.md``: with one training
recipe for all backbones, architectures can finally be compared fairly, by plotting ImageNet top-1 against inference
throughput and reading off the Pareto front (on GPU: LeViT, then TResNet at the high-accuracy end; on CPU:
MobileNetV3, EfficientNet and OFA). This module computes the front, writes it as CSV and Markdown, and plots it.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from miil.core.io import atomic_write_text

__all__ = ["ParetoPoint", "mark_front", "pareto_front", "pareto_table", "plot_pareto", "write_pareto"]


@dataclass
class ParetoPoint:
    """One model on the speed-accuracy plane.

    Args:
        model: Model name.
        images_per_s: Inference throughput (higher is better).
        top1: Top-1 accuracy in percent (higher is better).
        on_front: Whether no other model is at least as fast and as accurate and strictly better in one of them.
    """

    model: str
    images_per_s: float
    top1: float
    on_front: bool = False


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For each ``(speed, accuracy)`` point, whether it is Pareto-optimal (both maximized).

    A point is dominated when another point is at least as good in both coordinates and strictly better in one;
    identical points do not dominate each other.

    Args:
        points: ``(speed, accuracy)`` pairs.
    """
    pts = [(float(s), float(a)) for s, a in points]
    return [
        not any(s2 >= s and a2 >= a and (s2 > s or a2 > a) for j, (s2, a2) in enumerate(pts) if j != i)
        for i, (s, a) in enumerate(pts)
    ]


def mark_front(points: Sequence[ParetoPoint]) -> list[ParetoPoint]:
    """Set ``on_front`` on each point and return them sorted by throughput (fastest first)."""
    flags = pareto_front([(p.images_per_s, p.top1) for p in points])
    for p, flag in zip(points, flags):
        p.on_front = flag
    return sorted(points, key=lambda p: (-p.images_per_s, -p.top1))


def pareto_table(points: Sequence[ParetoPoint], *, device: str = "") -> str:
    """A Markdown table of the points (fastest first), the front marked.

    Args:
        points: The points (``on_front`` already set, see :func:`mark_front`).
        device: Device to name in the throughput column header.
    """
    head = f"img/s ({device})" if device else "img/s"
    lines = [f"| model | {head} | top-1 (%) | Pareto front |", "|---|---:|---:|:---:|"]
    for p in sorted(points, key=lambda p: (-p.images_per_s, -p.top1)):
        lines.append(f"| {p.model} | {p.images_per_s:.1f} | {p.top1:.2f} | {'yes' if p.on_front else ''} |")
    return "\n".join(lines) + "\n"


def plot_pareto(points: Sequence[ParetoPoint], path: str | os.PathLike, *, title: str = "") -> Path:
    """Scatter of top-1 vs throughput with the Pareto front drawn as a step line; saved as an image file.

    Args:
        points: The points (``on_front`` set).
        path: Output image (``.png``, ``.svg``, ``.pdf``).
        title: Plot title.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    try:
        for p in points:
            ax.scatter(p.images_per_s, p.top1, s=36, c="tab:red" if p.on_front else "tab:gray", zorder=3)
            ax.annotate(p.model, (p.images_per_s, p.top1), textcoords="offset points", xytext=(4, 4), fontsize=7)
        front = sorted((p for p in points if p.on_front), key=lambda p: p.images_per_s)
        if len(front) > 1:
            ax.step([p.images_per_s for p in front], [p.top1 for p in front], where="post", c="tab:red", lw=1.2)
        speeds = [p.images_per_s for p in points if p.images_per_s > 0]
        if speeds and max(speeds) / min(speeds) > 20:
            ax.set_xscale("log")
        ax.set_xlabel("inference throughput (images / s)")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title(title or "speed-accuracy Pareto front")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(out)
    finally:
        plt.close(fig)
    return out


def write_pareto(
    points: Sequence[ParetoPoint], out_dir: str | os.PathLike, *, title: str = "", device: str = ""
) -> dict[str, Path]:
    """Mark the front and write ``pareto.csv``, ``pareto.md`` and ``pareto.png`` into ``out_dir``.

    Args:
        points: The measured points.
        out_dir: Output folder (created).
        title: Plot title.
        device: Device name for the table header.

    Returns:
        ``{"csv": ..., "md": ..., "png": ...}`` paths.
    """
    if not points:
        raise ValueError("no models to compare")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    ordered = mark_front(list(points))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(asdict(ordered[0])), lineterminator="\n")
    writer.writeheader()
    for p in ordered:
        writer.writerow(asdict(p))
    paths = {"csv": folder / "pareto.csv", "md": folder / "pareto.md", "png": folder / "pareto.png"}
    atomic_write_text(paths["csv"], buf.getvalue())
    atomic_write_text(paths["md"], pareto_table(ordered, device=device))
    plot_pareto(ordered, paths["png"], title=title)
    return paths
