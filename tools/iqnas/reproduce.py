"""Reproduce IQNAS / BINAS (arXiv 2110.12399): the A ... F networks, from the latency table of this device to top-1.

Paper: BINAS: Bilinear Interpretable Neural Architecture Search (first titled IQNAS; Nayman et al.), the table of the
BINAS code's README ("Reproducing the paper results"): six latency targets on an Intel Xeon CPU with batch 1, each
network chosen by an exact integer program over the measured accuracy estimator, fine-tuned with knowledge
distillation from the heaviest path, and validated on ImageNet. IQNAS searches HardCoRe-NAS's space with its latency
table and supernet, so the first three steps are the HardCoRe script's (``tools/hardcore/reproduce.py``); the steps
shared by the rows run once::

    miil hardcore lut              latency table of this machine's CPU (1 thread, batch 1: the paper's protocol)
    miil hardcore train-supernet   heaviest path (300 epochs), then multipath one-shot with KD (100 epochs)
    miil iqnas estimate            the accuracy estimator: one one-shot measurement per design decision, on the
                                   held-out 20% of train
    miil iqnas search              the MILP (HiGHS, exact) at the row's latency target
    miil iqnas train               the child with the supernet's weights, KD from the heaviest path (19 epochs)
    miil iqnas validate            top-1 on ImageNet val (``--json``: the row's number)

The number of a row is the validated top-1 of the fine-tuned child; ``results.json`` also records the chosen
network's predicted latency and estimated accuracy (``details``).

``--smoke`` runs the same chain on a miniature ImageNet (``miil.core.miniature.make_imagenet``) in the reduced
``digits`` space at 16 px, one epoch of two steps per training and one estimator pass, with each target placed at the
same relative position of the smoke table's range as the paper's target among the six (``--latency-fraction``), so
that every target is feasible in the small space.
"""

import importlib.util
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reproduce_driver import Context, Paper, Row, Step, main, read_json_metric  # noqa: E402


def _hardcore_script():
    # The latency table and the supernet are HardCoRe-NAS's steps: take them from its script, not from a copy.
    path = Path(__file__).resolve().parents[1] / "hardcore" / "reproduce.py"
    spec = importlib.util.spec_from_file_location("hardcore_reproduce", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hardcore = _hardcore_script()
DATASET, LAYOUT = hardcore.DATASET, hardcore.LAYOUT
TRAIN_SMOKE, EVAL_SMOKE = hardcore.TRAIN_SMOKE, hardcore.EVAL_SMOKE

# BINAS README, "Reproducing the paper results": top-1 of each network at the latency of its recipe
# (`miil iqnas recipes binas-a`: 37 ms ... 59 ms on an Intel Xeon CPU, batch 1).
ROWS = {
    "a": (37.0, 75.9),
    "b": (41.0, 76.5),
    "c": (45.0, 77.0),
    "d": (50.0, 77.6),
    "e": (56.0, 77.8),
    "f": (59.0, 78.0),
}


def smoke_fraction(target_ms: float) -> str:
    """Where the paper's target lies among the six (0.1 for A's 37 ms ... 0.9 for F's 59 ms), as a table fraction."""
    low, high = min(t for t, _ in ROWS.values()), max(t for t, _ in ROWS.values())
    return f"{0.1 + 0.8 * (target_ms - low) / (high - low):.4f}"


def rows(ctx: Context) -> list[Row]:
    data = ctx.data(DATASET)
    lut, heavy, multi = ctx.run("lut.json"), ctx.run("supernet", "heaviest"), ctx.run("supernet", "multipath")
    estimator = ctx.run("estimator.json")
    shared = hardcore.shared_steps(ctx)
    estimate = ("iqnas", "estimate", "--recipe", "binas-imagenet", "--weights", multi, "--data-root", data)
    estimate += ("--output", estimator)
    if ctx.smoke:
        estimate += ("--passes", "1", "--batch-size", "16", "--progress", "false", "--device", "cpu")
    out = []
    for name, (target_ms, top1) in ROWS.items():
        recipe = f"binas-{name}"
        arch, ft = ctx.run("search", f"{recipe}.json"), ctx.run("finetune", recipe)
        report = ctx.run("validate", f"{recipe}.json")
        search = ("iqnas", "search", "--recipe", recipe, "--estimator", estimator, "--lut", lut, "--output", arch)
        train = ("iqnas", "train", "--recipe", "binas-finetune-imagenet", "--init-checkpoint", multi)
        train += ("--teacher-checkpoint", heavy, "--arch", arch, "--data-root", data, "--out-dir", ft)
        train += hardcore.per_process_batch(ctx, "miil.iqnas.recipes:CHILD_RECIPES", "binas-finetune-imagenet")
        validate = ("iqnas", "validate", "--weights", ft, "--data-root", data, "--json", report)
        if ctx.smoke:
            search += ("--latency-fraction", smoke_fraction(target_ms), "--progress", "false")
            train += TRAIN_SMOKE
            validate += EVAL_SMOKE
        out.append(
            Row(
                name=recipe,
                title=f"BINAS {name.upper()}: exact search at {target_ms:g} ms, fine-tuned with KD",
                metric="ImageNet top-1 %",
                paper=top1,
                source="BINAS README, results table",
                dataset=DATASET,
                layout=LAYOUT,
                needs=("train", "val"),
                steps=(
                    *shared,
                    Step("estimate", estimate),
                    Step(f"search-{name}", search),
                    Step(f"finetune-{name}", train, run_dir=ft),
                    Step(f"validate-{name}", validate),
                ),
                result=lambda out_dir, report=report: read_json_metric(Path(report), "metrics", "top1"),
                gpu_hours="about 280 + 120 once (supernets) + 35 once (estimator) + 15 per row (fine-tune), paper",
                details=lambda out_dir, arch=arch: search_details(Path(arch)),
            )
        )
    return out


def search_details(path: Path) -> dict:
    """The chosen network, its predicted latency under the table and its estimated accuracy."""
    if not path.is_file():
        return {}
    found = json.loads(path.read_text())
    return {
        "arch_def": found.get("arch_def"),
        "target_ms": (found.get("limits") or {}).get("latency"),
        "latency_fraction": found.get("latency_fraction"),
        "predicted_ms": (found.get("resources") or {}).get("latency"),
        "estimated_accuracy": found.get("predicted_accuracy"),
    }


PAPER = Paper(
    "iqnas",
    "BINAS: Bilinear Interpretable Neural Architecture Search (IQNAS)",
    "2110.12399",
    rows,
    hardcore.make_smoke_data,
)

if __name__ == "__main__":
    sys.exit(main(PAPER))
