"""Demo: semantic softmax vs flat softmax when labels come at mixed granularity, on real handwritten digits.

Paper: "ImageNet-21K Pretraining for the Masses", Ridnik et al. (arXiv 2104.10972), Sec. 3: ImageNet-21K labels are
not mutually exclusive, a chair photo is labelled "chair" or its parent "furniture", so one flat softmax over all
classes is told that "chair" is wrong for a chair; the semantic softmax gives each hierarchy level its own softmax and
trains a sample only at the levels its label reaches.

In miniature: scikit-learn's 1,797 real 8x8 digits under a two-level tree (3 parent groups by stroke shape, the 10
digits below them, 13 classes). Half of the training images (seeded) carry only their parent label, as
ImageNet-21K's coarse labels do. The same CNN, data, optimizer and budget are trained with a flat label-smoothed
softmax over the 13 classes and with the semantic softmax, and scored on the held-out digits (fine labels) with the
paper's semantic accuracy (every model read the same way: arg-max within each level). The original drops the
deepest level from training; with only two levels that would drop the digits, so the demo trains it
(``include_deepest=True``).
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from miil.core.data import DigitsDataset
from miil.core.demo import DigitsCNN
from miil.core.threads import limit_threads
from miil.core.train import TrainConfig, Trainer

from .hierarchy import SemanticHierarchy
from .loss import SemanticSoftmaxLoss
from .metrics import SemanticAccuracyMeter
from .tree import SemanticTree

__all__ = ["digits_tree", "run_demo"]

GROUPS = {"loop_digit": (0, 6, 8, 9), "stroke_digit": (1, 4, 7), "curve_digit": (2, 3, 5)}


def digits_tree() -> SemanticTree:
    """Three parent groups (level 0) over the ten digits (level 1); digit ``d`` is class ``3 + d``."""
    groups = list(GROUPS)
    parent_of = {d: g for g, name in enumerate(groups) for d in GROUPS[name]}
    class_list = groups + [f"digit_{d}" for d in range(10)]
    parents = [-1] * len(groups) + [parent_of[d] for d in range(10)]
    names = groups + [str(d) for d in range(10)]
    return SemanticTree(class_list, parents, names=names, meta={"variant": "digits-demo"})


class _MixedGranularityDigits(Dataset):
    """Digits labelled with tree indices; a seeded fraction of them with their parent group only."""

    def __init__(self, split: str, tree: SemanticTree, *, coarse_fraction: float, seed: int):
        self.base = DigitsDataset(split)
        leaf = torch.tensor(self.base.targets) + len(GROUPS)
        parent = torch.tensor([tree.parents[int(c)] for c in leaf])
        coarse = torch.rand(len(leaf), generator=torch.Generator().manual_seed(seed)) < coarse_fraction
        self.labels = torch.where(coarse, parent, leaf).tolist()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.base[index][0], self.labels[index]


def _train(
    loss: nn.Module,
    tree: SemanticTree,
    hierarchy: SemanticHierarchy,
    out: Path,
    *,
    epochs: int,
    seed: int,
    coarse_fraction: float,
) -> dict[str, float]:
    torch.manual_seed(seed)
    cfg = TrainConfig(
        out_dir=str(out),
        epochs=epochs,
        batch_size=64,
        opt="adam",
        lr=3e-3,
        weight_decay=1e-4,
        sched="onecycle",
        pct_start=0.1,
        seed=seed,
        progress=False,
        device="cpu",
        eval_metric="semantic_top1",
    )
    trainer = Trainer(
        DigitsCNN(num_classes=len(tree), width=16),
        loss,
        _MixedGranularityDigits("train", tree, coarse_fraction=coarse_fraction, seed=seed),
        cfg,
        val_dataset=_MixedGranularityDigits("test", tree, coarse_fraction=0.0, seed=seed),
        meter=SemanticAccuracyMeter(hierarchy),
        run_info={"demo": "in21k"},
    )
    result = trainer.fit()
    return result.history[-1]["val"]


def run_demo(*, long: bool = False, seed: int = 0) -> dict:
    """Train flat and semantic softmax on mixed-granularity digit labels; ``passed`` when the semantic softmax has
    the higher held-out semantic accuracy (mean over seeds)."""
    # a tiny CNN: one thread is as fast, and robust on a shared CPU
    with limit_threads(1):
        return _compare(long=long, seed=seed)


def _compare(*, long: bool, seed: int) -> dict:
    tree = digits_tree()
    hierarchy = SemanticHierarchy(tree, include_deepest=True)
    seeds = [seed + k for k in range(5 if long else 3)]
    epochs = 30 if long else 5
    coarse_fraction = 0.5
    runs: dict[str, list[dict[str, float]]] = {"flat": [], "semantic": []}
    with tempfile.TemporaryDirectory(prefix="miil-demo-in21k-") as tmp:
        for s in seeds:
            flat = nn.CrossEntropyLoss(label_smoothing=0.2)
            semantic = SemanticSoftmaxLoss(hierarchy, label_smoothing=0.2)
            for name, loss in (("flat", flat), ("semantic", semantic)):
                runs[name].append(
                    _train(
                        loss,
                        tree,
                        hierarchy,
                        Path(tmp) / f"{name}-{s}",
                        epochs=epochs,
                        seed=s,
                        coarse_fraction=coarse_fraction,
                    )
                )

    def mean(name: str, key: str) -> float:
        return statistics.fmean(r[key] for r in runs[name])

    metrics = {}
    for name in runs:
        metrics[f"{name}_semantic_top1"] = mean(name, "semantic_top1")
        metrics[f"{name}_parent_top1"] = mean(name, "level0_top1")
        metrics[f"{name}_digit_top1"] = mean(name, "level1_top1")
        metrics[f"{name}_flat_top1"] = mean(name, "top1")  # arg-max over all 13 outputs equals the digit
    wins = sum(s["semantic_top1"] > f["semantic_top1"] for s, f in zip(runs["semantic"], runs["flat"]))
    metrics["seeds"] = len(seeds)
    metrics["semantic_wins"] = wins
    print(
        f"held-out digits, {int(coarse_fraction * 100)}% of training labels coarse (parent only), {epochs} epochs, "
        f"{len(seeds)} seeds:"
    )
    print(f"{'':>18} {'semantic top-1':>15} {'parent (lvl 0)':>15} {'digit (lvl 1)':>14} {'13-way top-1':>13}")
    for name in runs:
        print(
            f"{name + ' softmax':>18} {metrics[f'{name}_semantic_top1']:>15.2f} "
            f"{metrics[f'{name}_parent_top1']:>15.2f} {metrics[f'{name}_digit_top1']:>14.2f} "
            f"{metrics[f'{name}_flat_top1']:>13.2f}"
        )
    passed = metrics["semantic_semantic_top1"] > metrics["flat_semantic_top1"]
    summary = (
        f"semantic accuracy {metrics['semantic_semantic_top1']:.2f}% (semantic softmax) vs "
        f"{metrics['flat_semantic_top1']:.2f}% (flat softmax), better in {wins}/{len(seeds)} seeds"
    )
    return {"passed": passed, "summary": summary, "metrics": metrics}
