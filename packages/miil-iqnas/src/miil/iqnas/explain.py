"""Interpretability of the measured estimator: what each design choice contributes, per stage and block.

Paper: IQNAS / BINAS (arXiv 2110.12399), section 5 ("interpretability"): the estimator's coefficients are measured
accuracy differences, so they can be read directly. For every block the options are grouped by expansion ratio,
kernel size and squeeze-excite; the *gain* of a factor is the mean coefficient of its largest value minus that of its
smallest (e.g. expansion 6 vs 3), and the depth gain of a stage is ``Delta beta`` of its largest depth minus that of
its smallest. :func:`insights` turns the per-stage gains into the paper's kind of statement ("depth and width pay
more in deeper stages") by their rank correlation with the stage index, and says so only when the numbers show it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from .estimator import AccuracyEstimator

__all__ = ["FACTORS", "contribution_table", "format_table", "insights", "plot_contributions", "stage_gains"]

FACTORS = ("expansion", "kernel", "se")


def option_name(option) -> str:
    """A block option as ``e<expansion>k<kernel>[se]`` (the notation of the paper's figures)."""
    return f"e{option.expansion}k{option.kernel}{'se' if option.se else ''}"


def _factor_gain(space, delta: np.ndarray, factor: str) -> float:
    values = [getattr(o, factor) for o in space.options]
    distinct = sorted(set(values))
    if len(distinct) < 2:
        return 0.0
    lo = np.mean([d for d, v in zip(delta, values) if v == distinct[0]])
    hi = np.mean([d for d, v in zip(delta, values) if v == distinct[-1]])
    return float(hi - lo)


def contribution_table(estimator: AccuracyEstimator) -> list[dict[str, Any]]:
    """One row per (stage, block): the gains (accuracy points) of depth (per stage), expansion, kernel and SE."""
    form = estimator.additive
    space = estimator.space
    rows = []
    for s in range(space.num_stages):
        depth_gain = float(form.depth[s, -1] - form.depth[s, 0])
        for j in range(space.max_depth):
            delta = form.block[s, j]
            rows.append(
                {
                    "stage": s + 1,
                    "block": j + 1,
                    "depth_gain": depth_gain,
                    **{f"{f}_gain": _factor_gain(space, delta, f) for f in FACTORS},
                    "best_option": option_name(space.options[int(np.argmax(delta))]),
                    "spread": float(delta.max() - delta.min()),
                }
            )
    return rows


def stage_gains(estimator: AccuracyEstimator) -> dict[str, np.ndarray]:
    """Per-stage gains: depth, and expansion / kernel / SE averaged over the stage's blocks."""
    rows = contribution_table(estimator)
    n = estimator.space.num_stages
    out = {"depth": np.array([next(r["depth_gain"] for r in rows if r["stage"] == s + 1) for s in range(n)])}
    for f in FACTORS:
        out[f] = np.array([np.mean([r[f"{f}_gain"] for r in rows if r["stage"] == s + 1]) for s in range(n)])
    return out


def insights(estimator: AccuracyEstimator) -> list[str]:
    """Sentences read off the measured coefficients (trend of each gain over the stages, and the largest gains)."""
    gains = stage_gains(estimator)
    n = estimator.space.num_stages
    lines = []
    words = {
        "depth": "depth",
        "expansion": "width (expansion ratio)",
        "kernel": "the 5x5 kernel",
        "se": "squeeze-excite",
    }
    for name, g in gains.items():
        if n >= 2 and np.ptp(g) > 0:
            rho = float(stats.spearmanr(np.arange(n), g)[0]) if n > 2 else float(np.sign(g[-1] - g[0]))
            trend = (
                "more in deeper stages" if rho > 0.5 else "more in shallower stages" if rho < -0.5 else "no clear trend"
            )
            lines.append(
                f"{words[name]} pays {trend}: gain per stage {', '.join(f'{v:+.2f}' for v in g)} points "
                f"(rank correlation with stage index {rho:+.2f})"
            )
    best = max(gains, key=lambda k: float(np.max(gains[k])))
    s = int(np.argmax(gains[best]))
    lines.append(f"largest single gain: {words[best]} in stage {s + 1} ({gains[best][s]:+.2f} points)")
    return lines


def format_table(estimator: AccuracyEstimator) -> str:
    """The contribution table as aligned text."""
    rows = contribution_table(estimator)
    head = f"{'stage':>5} {'block':>5} {'depth':>7} {'expand':>7} {'kernel':>7} {'SE':>7} {'spread':>7}  best option"
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['stage']:>5} {r['block']:>5} {r['depth_gain']:+7.2f} {r['expansion_gain']:+7.2f} "
            f"{r['kernel_gain']:+7.2f} {r['se_gain']:+7.2f} {r['spread']:7.2f}  {r['best_option']}"
        )
    return "\n".join(lines)


def plot_contributions(estimator: AccuracyEstimator, path: str | os.PathLike) -> Path:
    """Save a figure: the coefficient of every (stage, block, option) and the per-stage gains of each factor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    space = estimator.space
    form = estimator.additive
    gains = stage_gains(estimator)
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    grid = form.block.reshape(-1, space.num_options)
    lim = float(np.abs(grid).max()) or 1.0
    im = ax0.imshow(grid, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    ax0.set_yticks(
        range(grid.shape[0]), [f"s{s + 1} b{j + 1}" for s in range(space.num_stages) for j in range(space.max_depth)]
    )
    ax0.set_xticks(
        range(space.num_options),
        [option_name(o) for o in space.options],
        rotation=60,
    )
    ax0.set_title(f"block coefficients (accuracy points vs {estimator.reference})")
    fig.colorbar(im, ax=ax0)
    width = 0.8 / len(gains)
    x = np.arange(space.num_stages)
    for i, (name, g) in enumerate(gains.items()):
        ax1.bar(x + i * width, g, width, label=name)
    ax1.set_xticks(x + 0.4 - width / 2, [f"stage {s + 1}" for s in x])
    ax1.axhline(0, color="black", linewidth=0.5)
    ax1.set_ylabel("gain (top-1 points)")
    ax1.set_title("gain of the largest over the smallest choice")
    ax1.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
