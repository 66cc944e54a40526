"""Reproduce USI, "Solving ImageNet" (arXiv 2204.03475): teacher -> KD for every backbone, then the Pareto plot.

Paper: Figure 1c (ImageNet-1K top-1 of each backbone trained with USI), Table 5 (LeViT-384 with longer schedules, as
quoted) and the released ``MODEL_ZOO.md`` (EdgeNeXt-S, the teacher). Every row is a ``miil usi train --recipe``
row: the recipe holds the whole USI preset (AdamW 2e-3, cosine, mixup/cutmix, RandAugment, repeated augmentation x3,
EMA, KD weight 5 from the frozen, BN-fused teacher); only the backbone and the epochs differ. The chain::

    miil usi validate --model tresnet_v2_l.miil_in21k_ft_in1k --pretrained   the teacher (83.9% in MODEL_ZOO)
    miil usi train --recipe usi-<backbone>                                   KD from that teacher (timm's weights)
    miil usi validate --weights RUN --json FILE                              the row's top-1
    miil usi pareto --accuracy-file <every row's report> --json FILE         the measured speed-accuracy plot

The teacher is the authors' TResNet-L-V2 (IN-21K pretrained, fine-tuned on IN-1K) as timm ships it, downloaded
once; its validation is the first step, so a wrong teacher stops the chain before any KD training. ``pareto`` times
the trained backbones on this machine's GPU (BN fused, channels-last, fp16, batch 256, compiled) and plots them with
the top-1 each row measured; the paper used TensorRT on a V100, so throughputs differ from its figure.

``--smoke`` runs the same chain on a miniature ImageNet (``miil.core.miniature.make_imagenet``): the teacher is
trained there (no download), each backbone is replaced by a tiny timm model of its family (``test_resnet``,
``test_convnext``, ``test_efficientnet``, ``test_vit``), 32 px, one epoch of two steps.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reproduce_driver import Context, Paper, Row, Step, main, read_json_metric  # noqa: E402

from miil.usi.recipes import DEFAULT_TEACHER, PAPER_RESULTS  # noqa: E402

DATASET = "imagenet"
LAYOUT = "imagenet/train/<wnid>/<image>.JPEG and imagenet/val/<wnid>/<image>.JPEG (val moved into class folders)"
GPU_HOURS = "1-3 days on 8 V100 per 300-epoch row (paper); the e600 / e1000 rows 2x / 3.3x that"

# The teacher's top-1 on ImageNet-1K val: 83.9 in the original MODEL_ZOO.md (tresnet_l_v2_83_9.pth).
TEACHER_TOP1 = 83.9

# --smoke: a tiny timm model of the same kind as each backbone (residual, mobile, ConvNeXt-like, transformer or MLP).
SMOKE_MODELS = {
    "resnet50": "test_resnet",
    "tresnet_m": "test_resnet",
    "regnety_320": "test_byobnet",
    "convnext_small": "test_convnext",
    "edgenext_small": "test_convnext",
    "efficientnet_b0": "test_efficientnet",
    "mobilenetv3_large_100": "test_efficientnet",
}
SMOKE_TEACHER = "test_resnet"
SMOKE_CLASSES = 4
TRAIN_SMOKE = (
    "--num-classes", str(SMOKE_CLASSES), "--img-size", "32", "--epochs", "1", "--max-steps-per-epoch", "2",
    "--batch-size", "4", "--progress", "false", "--device", "cpu", "--num-workers", "0",
)  # fmt: skip
EVAL_SMOKE = ("--batch-size", "8", "--progress", "false", "--device", "cpu", "--num-workers", "0")


def smoke_model(model: str) -> str:
    """The tiny stand-in of a recipe's backbone in ``--smoke`` (transformers and MLPs: ``test_vit``)."""
    return SMOKE_MODELS.get(model, "test_vit")


def teacher_steps(ctx: Context) -> tuple[Step, ...]:
    """The teacher: timm's TResNet-L-V2 validated (real run), or a tiny teacher trained on the miniature (smoke)."""
    data, report = ctx.data(DATASET), ctx.run("teacher", "val.json")
    if not ctx.smoke:
        validate = ("usi", "validate", "--model", DEFAULT_TEACHER, "--pretrained", "--data-root", data)
        return (Step("teacher-validate", (*validate, "--json", report)),)
    run = ctx.run("teacher")
    train = ("usi", "train", "--model", SMOKE_TEACHER, "--teacher", "none", "--data-root", data, "--out-dir", run)
    validate = ("usi", "validate", "--weights", run, "--data-root", data, "--json", report)
    return (
        Step("teacher-train", (*train, *TRAIN_SMOKE), run_dir=run),
        Step("teacher-validate", (*validate, *EVAL_SMOKE)),
    )


def kd_steps(ctx: Context, recipe: str) -> tuple[Step, ...]:
    """Train one recipe row with KD from the teacher, then validate it (``--json``: the row's number)."""
    data, run = ctx.data(DATASET), ctx.run(recipe)
    train = ("usi", "train", "--recipe", recipe, "--data-root", data, "--out-dir", run)
    validate = ("usi", "validate", "--weights", run, "--data-root", data, "--json", ctx.run(recipe, "val.json"))
    if ctx.smoke:
        teacher = ("--teacher", SMOKE_TEACHER, "--teacher-checkpoint", ctx.run("teacher", "best.safetensors"))
        train += ("--model", smoke_model(PAPER_RESULTS[recipe].model), *teacher, *TRAIN_SMOKE)
        validate += EVAL_SMOKE
    else:  # machine settings of the original 8-GPU script, not hyper-parameters
        train += ("--num-workers", "10", "--channels-last", "true", "--teacher-channels-last", "true")
        validate += ("--num-workers", "10")
    return Step(f"train-{recipe}", train, run_dir=run), Step(f"validate-{recipe}", validate)


def pareto_rows() -> list[str]:
    """The recipes on the speed-accuracy plot: the 300-epoch rows (one per backbone)."""
    return [name for name, row in PAPER_RESULTS.items() if row.epochs == 300 and not name.endswith("-e300")]


def rows(ctx: Context) -> list[Row]:
    teacher = teacher_steps(ctx)
    common = dict(dataset=DATASET, layout=LAYOUT, needs=("train", "val"))
    out = [
        Row(
            name="teacher",
            title=f"the KD teacher, TResNet-L-V2 (IN-21K pretrained), {DEFAULT_TEACHER}",
            metric="ImageNet top-1 %",
            paper=TEACHER_TOP1,
            source="original MODEL_ZOO.md",
            steps=teacher,
            result=lambda out_dir: read_json_metric(out_dir / "teacher" / "val.json", "metrics", "top1"),
            **common,
        )
    ]
    for recipe, paper in PAPER_RESULTS.items():
        before = f"; previous best recipe {paper.previous_top1:g}" if paper.previous_top1 is not None else ""
        out.append(
            Row(
                name=recipe,
                title=f"{paper.model}, {paper.epochs} epochs, USI KD{before}",
                metric="ImageNet top-1 %",
                paper=paper.top1,
                source=paper.source if paper.source != "Table 5" else "Table 5 (as quoted in a secondary source)",
                steps=(*teacher, *kd_steps(ctx, recipe)),
                result=lambda out_dir, r=recipe: read_json_metric(out_dir / r / "val.json", "metrics", "top1"),
                gpu_hours=GPU_HOURS,
                **common,
            )
        )
    plotted = pareto_rows()
    models = [PAPER_RESULTS[r].model for r in plotted]
    pareto = ("usi", "pareto", "--accuracy-file", *(ctx.run(r, "val.json") for r in plotted))
    pareto += ("--out-dir", ctx.run("pareto"), "--json", ctx.run("pareto", "pareto.json"))
    if ctx.smoke:
        models = list(dict.fromkeys(smoke_model(m) for m in models))  # one point per tiny model (last report wins)
        pareto += ("--img-size", "32", "--batch-size", "2", "--warmup", "1", "--iters", "1", "--min-seconds", "0")
        pareto += ("--device", "cpu")
    else:
        pareto += ("--device", "cuda", "--amp", "true", "--batch-size", "256", "--compile", "true")
    kd = [step for r in plotted for step in kd_steps(ctx, r)]
    out.append(
        Row(
            name="pareto",
            title="speed-accuracy plot of the trained backbones on this GPU (BN fused, channels-last)",
            metric="models on the Pareto front",
            paper=None,
            source="the paper gives a plot (Speed_Accuracy_Comparisons.md), no single number",
            steps=(*teacher, *kd, Step("pareto", ("usi", "pareto", "--models", *models, *pareto[2:]))),
            result=lambda out_dir: read_json_metric(out_dir / "pareto" / "pareto.json", "front_size"),
            **common,
        )
    )
    return out


def make_smoke_data(root: Path) -> None:
    from miil.core.miniature import make_imagenet

    make_imagenet(root / DATASET, num_classes=SMOKE_CLASSES, train_per_class=4, val_per_class=2)


PAPER = Paper("usi", "Solving ImageNet: a Unified Scheme for Training any Backbone to Top Results", "2204.03475", rows,
              make_smoke_data)  # fmt: skip

if __name__ == "__main__":
    sys.exit(main(PAPER))
