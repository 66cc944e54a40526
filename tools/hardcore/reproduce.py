"""Reproduce HardCoRe-NAS (arXiv 2102.11646): the A ... F networks, from the latency table of this device to top-1.

Paper: HardCoRe-NAS: Hard Constrained diffeRentiable Neural Architecture Search (Nayman et al., ICML 2021), the table
of the original README ("Reproducing the paper results"): six latency targets on an Intel Xeon CPU with batch 1, each
network searched in the one-shot supernet, fine-tuned with knowledge distillation from the heaviest path, and
validated on ImageNet. Every row runs the whole chain; the steps shared by the rows run once::

    miil hardcore lut              latency table of this machine's CPU (1 thread, batch 1: the paper's protocol)
    miil hardcore calibrate        predicted vs measured random networks; the affine correction stored in the table
    miil hardcore train-supernet   heaviest path (300 epochs), then multipath one-shot with KD (100 epochs)
    miil hardcore search           BCSFW at the row's target on the held-out 20% of train, closed loop: the chosen
                                   network is measured here and searched again on a miss
    miil hardcore finetune         the child with the supernet's weights, KD from the heaviest path (50 epochs)
    miil hardcore validate         top-1 on ImageNet val (``--json``: the row's number)

The number of a row is the validated top-1 of the fine-tuned child; ``results.json`` also records the chosen
network's predicted and measured latency (``details``).

``--smoke`` runs the same chain on a miniature ImageNet (``miil.core.miniature.make_imagenet``) in the reduced
``digits`` space at 16 px, one epoch of two steps per training and two search steps, with each target placed at the
same relative position of the smoke table's range as the paper's target among the six (``--latency-fraction``), so
that every target is feasible in the small space.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reproduce_driver import Context, Paper, Row, Step, main, read_json_metric  # noqa: E402

DATASET = "imagenet"
LAYOUT = "imagenet/train/<wnid>/<image>.JPEG and imagenet/val/<wnid>/<image>.JPEG (val sorted into class folders)"

# Original README, "Reproducing the paper results": top-1 of the "Blue" column (the searched network with the
# supernet's weights, fine-tuned with KD: the chain this script runs) at the latency of its recipe
# (`miil hardcore recipes hardcorenas-a`: 38 ms ... 60 ms on an Intel Xeon CPU, batch 1).
ROWS = {
    "a": (38.0, 75.4),
    "b": (40.0, 75.9),
    "c": (44.0, 76.6),
    "d": (50.0, 77.0),
    "e": (55.0, 77.4),
    "f": (60.0, 78.1),
}

# Smoke: tiny overrides of the recipes (the reduced space, 16 px, one epoch of two steps, CPU, no workers).
TRAIN_SMOKE = (
    "--epochs", "1", "--max-steps-per-epoch", "2", "--batch-size", "8",
    "--progress", "false", "--device", "cpu", "--num-workers", "0",
)  # fmt: skip
EVAL_SMOKE = ("--progress", "false", "--device", "cpu", "--num-workers", "0")
SUPERNETS = "miil.hardcore.recipes:SUPERNET_RECIPES"


def per_process_batch(ctx: Context, recipes: str, name: str) -> tuple[str, ...]:
    """``--gpus N``: the recipe's batch split over the N processes (``--batch-size`` is per process in miil), so the
    global batch, which the recipe's learning rate goes with, stays the paper's.

    Args:
        ctx: The run (``gpus``, ``smoke``).
        recipes: ``"module:TABLE"`` of the recipe table (``miil.hardcore.recipes:SUPERNET_RECIPES``).
        name: The recipe's name.
    """
    if ctx.smoke or ctx.gpus <= 1:
        return ()
    import importlib

    module, table = recipes.split(":")
    batch = getattr(importlib.import_module(module), table)[name].batch_size
    return ("--batch-size", str(max(1, batch // ctx.gpus)))


def smoke_fraction(target_ms: float) -> str:
    """Where the paper's target lies among the six (0.1 for A's 38 ms ... 0.9 for F's 60 ms), as a table fraction."""
    low, high = min(t for t, _ in ROWS.values()), max(t for t, _ in ROWS.values())
    return f"{0.1 + 0.8 * (target_ms - low) / (high - low):.4f}"


def shared_steps(ctx: Context) -> tuple[Step, ...]:
    """The latency table and the two supernet stages (the IQNAS script runs the same commands)."""
    data = ctx.data(DATASET)
    lut, heavy, multi = ctx.run("lut.json"), ctx.run("supernet", "heaviest"), ctx.run("supernet", "multipath")
    lut_args = ("hardcore", "lut", "--output", lut, "--backend", "cpu", "--threads", "1", "--batch-size", "1")
    heavy_args = ("hardcore", "train-supernet", "--recipe", "heaviest-path-imagenet", "--data-root", data)
    heavy_args += per_process_batch(ctx, SUPERNETS, "heaviest-path-imagenet")
    multi_args = ("hardcore", "train-supernet", "--recipe", "multipath-imagenet", "--init-checkpoint", heavy)
    multi_args += ("--data-root", data, *per_process_batch(ctx, SUPERNETS, "multipath-imagenet"))
    if ctx.smoke:
        # 16 px in the digits space, 10 classes as in the miniature (the head is timed for them).
        lut_args += ("--space", "digits", "--img-size", "16", "--num-classes", "10", "--warmup", "1", "--repeats", "3")
        lut_args += ("--progress", "false")
        heavy_args += ("--space", "digits", "--img-size", "16") + TRAIN_SMOKE
        multi_args += TRAIN_SMOKE
    return (
        Step("lut", lut_args),
        Step("train-heaviest", (*heavy_args, "--out-dir", heavy), run_dir=heavy),
        Step("train-multipath", (*multi_args, "--out-dir", multi), run_dir=multi),
    )


def rows(ctx: Context) -> list[Row]:
    data = ctx.data(DATASET)
    lut, heavy, multi = ctx.run("lut.json"), ctx.run("supernet", "heaviest"), ctx.run("supernet", "multipath")
    lut_step, heavy_step, multi_step = shared_steps(ctx)
    calibrate = ("hardcore", "calibrate", "--lut", lut, "--num-archs", "2" if ctx.smoke else "20", "--update")
    calibrate += ("--json", ctx.run("calibration.json"))
    if ctx.smoke:
        calibrate += ("--progress", "false")
    out = []
    for name, (target_ms, top1) in ROWS.items():
        recipe = f"hardcorenas-{name}"
        arch, ft = ctx.run("search", f"{recipe}.json"), ctx.run("finetune", recipe)
        report = ctx.run("validate", f"{recipe}.json")
        search = ("hardcore", "search", "--recipe", recipe, "--weights", multi, "--lut", lut, "--data-root", data)
        search += ("--closed-loop", "--output", arch)
        finetune = ("hardcore", "finetune", "--recipe", "finetune-imagenet", "--init-checkpoint", multi)
        finetune += ("--teacher-checkpoint", heavy, "--arch", arch, "--data-root", data, "--out-dir", ft)
        finetune += per_process_batch(ctx, "miil.hardcore.recipes:CHILD_RECIPES", "finetune-imagenet")
        validate = ("hardcore", "validate", "--weights", ft, "--data-root", data, "--json", report)
        if ctx.smoke:
            search += ("--latency-fraction", smoke_fraction(target_ms), "--steps", "2", "--batch-size", "8")
            search += ("--progress", "false", "--device", "cpu")
            finetune += TRAIN_SMOKE
            validate += EVAL_SMOKE
        out.append(
            Row(
                name=recipe,
                title=f"HardCoRe-NAS {name.upper()}: searched at {target_ms:g} ms, fine-tuned with KD",
                metric="ImageNet top-1 %",
                paper=top1,
                source="original README, results table (Blue: inherited weights, fine-tuned)",
                dataset=DATASET,
                layout=LAYOUT,
                needs=("train", "val"),
                steps=(
                    lut_step,
                    Step("calibrate", calibrate),
                    heavy_step,
                    multi_step,
                    Step(f"search-{name}", search),
                    Step(f"finetune-{name}", finetune, run_dir=ft),
                    Step(f"validate-{name}", validate),
                ),
                result=lambda out_dir, report=report: read_json_metric(Path(report), "metrics", "top1"),
                gpu_hours="about 400 once (both supernet stages) + 15 per row (fine-tune), paper",
                details=lambda out_dir, arch=arch: search_details(Path(arch)),
            )
        )
    return out


def search_details(path: Path) -> dict:
    """The chosen network and its latency: the target, the table's prediction and the measurement here."""
    if not path.is_file():
        return {}
    found = json.loads(path.read_text())
    loop = found.get("closed_loop") or {}
    return {
        "arch_def": found.get("arch_def"),
        "target_ms": found.get("target_ms"),
        "latency_fraction": found.get("latency_fraction"),
        "predicted_ms": found.get("predicted_ms"),
        "measured_ms": loop.get("measured_ms"),
        "met_on_device": loop.get("met_on_device"),
        "closed_loop_stopped": loop.get("stopped"),
    }


def make_smoke_data(root: Path) -> None:
    from miil.core.miniature import make_imagenet

    make_imagenet(root / DATASET)


PAPER = Paper(
    "hardcore",
    "HardCoRe-NAS: Hard Constrained diffeRentiable Neural Architecture Search",
    "2102.11646",
    rows,
    make_smoke_data,
)

if __name__ == "__main__":
    sys.exit(main(PAPER))
