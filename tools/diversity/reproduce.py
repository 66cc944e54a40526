"""Reproduce "Diverse ImageNet Models Transfer Better" (arXiv 2204.09134): pretrainings, diversity, transfer, plot.

Paper: Nayman et al., WACV 2024: ImageNet pretrainings that are self-supervised first and supervised after are more
diverse and transfer better than supervised-only ones at similar accuracy. Its tables could not be retrieved (see the
package README), so no row carries a paper number; the rows are the comparison the paper makes, on the recipes of
``miil diversity recipes``::

    miil diversity convert dino_resnet50_pretrain.pth ...            the released DINO ResNet-50 (its row only)
    miil diversity train --recipe <pretraining>                      random / SimCLR / DINO init, then USI KD
    miil diversity measure --weights RUN --json FILE                 diversity on ImageNet val (filter diversity ...)
    miil diversity transfer --weights RUN --recipe linear-probe      CIFAR-100 (top-1) and MS-COCO 2014 (mAP)
    miil diversity report <the pretrainings' transfers> --plot PNG   table, Spearman correlations, the plot

Each pretraining gives three rows (its diversity, its two transfers); each downstream dataset gives a report row
whose number is the Spearman correlation between filter diversity and the transfer metric over the pretrainings
(the paper's claim: positive). The supervised stage's teacher is USI's (timm's TResNet-L-V2, downloaded once).

``--smoke``: the same chain on miniature datasets in their real layouts (``miil.core.miniature``: ImageNet folders,
a second class-folder set for CIFAR-100, COCO-2014 with its instances files), tiny timm models (``test_resnet``,
``test_vit``) at 32 px, one epoch of two steps, a tiny teacher trained first (no download), and stand-ins for the
DINO releases: tiny backbones with seeded random weights in the release's file layout.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reproduce_driver import Context, Paper, Row, Step, main, read_json_metric  # noqa: E402

SOURCE = "imagenet"
SOURCE_LAYOUT = "imagenet/train/<wnid>/<image>.JPEG and imagenet/val/<wnid>/<image>.JPEG"
DINO = "dino"
DINO_LAYOUT = "dino/dino_resnet50_pretrain.pth (the DINO release, dl.fbaipublicfiles.com/dino)"
DINO_R50 = "dino_resnet50_pretrain.pth"
DINO_VIT_SMOKE = "dino_deitsmall16_pretrain.pth"  # smoke only: the real row downloads timm's .dino weights
NO_PAPER = "not retrieved (the paper's tables were unavailable; see the README)"

# The compared pretrainings: `miil diversity recipes` rows, with the tiny model each uses in --smoke.
PRETRAININGS = {
    "usi-supervised": "test_resnet",  # random init -> USI: the supervised-only baseline
    "ssl-usi": "test_resnet",  # SimCLR here -> USI: the method
    "dino-usi-resnet50": "test_resnet",  # released DINO ResNet-50 -> USI
    "dino-usi-vit-s": "test_vit",  # timm's DINO ViT-S/16 -> USI
}
# Downstream datasets: folder name -> (title, layout, needs, data options, metric).
DOWNSTREAM = {
    "cifar100": (
        "CIFAR-100",
        "cifar100/train/<class>/<image> and cifar100/test/<class>/<image> (CIFAR-100 written out as class folders)",
        ("train", "test"),
        ("--data-format", "folder", "--val-split", "test", "--task", "single"),
        "top-1 %",
    ),
    "coco": (
        "MS-COCO 2014 (multi-label)",
        "coco/train2014/, coco/val2014/, coco/annotations/instances_{train,val}2014.json (as distributed)",
        ("train2014", "val2014", "annotations/instances_train2014.json", "annotations/instances_val2014.json"),
        ("--data-format", "coco", "--task", "multi"),
        "mAP %",
    ),
}
GPU_HOURS = "not stated; a 300-epoch USI run is 1-3 days on 8 V100 (USI paper), plus 100 SimCLR epochs for ssl-usi"

SMOKE_CLASSES = 4
TRAIN_SMOKE = (
    "--num-classes", str(SMOKE_CLASSES), "--img-size", "32", "--epochs", "1", "--max-steps-per-epoch", "2",
    "--batch-size", "4", "--progress", "false", "--device", "cpu", "--num-workers", "0",
)  # fmt: skip
SSL_SMOKE = ("--ssl-epochs", "1", "--ssl-batch-size", "4", "--ssl-warmup-epochs", "0", "--ssl-proj-hidden", "16")
SSL_SMOKE += ("--ssl-proj-dim", "8")
EVAL_SMOKE = ("--img-size", "32", "--batch-size", "8", "--progress", "false", "--device", "cpu")
TRANSFER_SMOKE = (*EVAL_SMOKE, "--epochs", "1", "--max-batches", "2")


def pretraining_steps(ctx: Context, recipe: str) -> tuple[Step, ...]:
    """The pretraining of one recipe (with the smoke teacher, or the DINO conversion, first where needed)."""
    source, run = ctx.data(SOURCE), ctx.run(recipe)
    train = ("diversity", "train", "--recipe", recipe, "--data-root", source, "--out-dir", run)
    steps = []
    if ctx.smoke:
        teacher = ctx.run("teacher")
        train_teacher = ("usi", "train", "--model", "test_resnet", "--teacher", "none", "--data-root", source)
        steps.append(Step("teacher-train", (*train_teacher, "--out-dir", teacher, *TRAIN_SMOKE), run_dir=teacher))
        train += ("--model", PRETRAININGS[recipe], "--teacher", "test_resnet")
        train += ("--teacher-checkpoint", str(Path(teacher) / "best.safetensors"), *TRAIN_SMOKE)
        if recipe == "ssl-usi":
            train += SSL_SMOKE
        if recipe == "dino-usi-vit-s":
            train += ("--pretrained", "false", "--init-checkpoint", ctx.data(DINO, DINO_VIT_SMOKE))
    if recipe == "dino-usi-resnet50":
        converted = ctx.run("dino", "dino_resnet50.safetensors")
        model = PRETRAININGS[recipe] if ctx.smoke else "resnet50"
        steps.append(Step("convert-dino-resnet50", ("diversity", "convert", ctx.data(DINO, DINO_R50), converted,
                                                    "--model", model)))  # fmt: skip
        train += ("--init-checkpoint", converted)
    steps.append(Step(f"train-{recipe}", train, run_dir=run))
    return tuple(steps)


def transfer_steps(ctx: Context, recipe: str, downstream: str) -> tuple[Step, ...]:
    """Linear probe of one pretraining on one downstream dataset (fixed hyper-parameters for every model)."""
    out = ctx.run("transfer", downstream, recipe)
    transfer = ("diversity", "transfer", "--weights", ctx.run(recipe), "--recipe", "linear-probe", "--name", recipe)
    transfer += (*DOWNSTREAM[downstream][3], "--data-root", ctx.data(downstream), "--out-dir", out)
    if ctx.smoke:
        transfer += TRANSFER_SMOKE
    return (*pretraining_steps(ctx, recipe), Step(f"transfer-{downstream}-{recipe}", transfer))


def rows(ctx: Context) -> list[Row]:
    out = []
    for recipe in PRETRAININGS:
        dino = recipe == "dino-usi-resnet50"  # needs the DINO release on disk: skipped when dino/ is absent
        data = dict(dataset=DINO, layout=DINO_LAYOUT, needs=(DINO_R50,)) if dino else {}
        report = ctx.run("diversity", f"{recipe}.json")
        measure = ("diversity", "measure", "--weights", ctx.run(recipe), "--data-root", ctx.data(SOURCE))
        measure += ("--name", recipe, "--json", report)
        if ctx.smoke:
            measure += EVAL_SMOKE
        out.append(
            Row(
                name=f"{recipe}-diversity",
                title=f"{recipe}: filter diversity on ImageNet val after pretraining",
                metric="filter diversity",
                paper=None,
                source=NO_PAPER,
                steps=(*pretraining_steps(ctx, recipe), Step(f"measure-{recipe}", measure)),
                result=lambda out_dir, r=recipe: read_json_metric(
                    out_dir / "diversity" / f"{r}.json", "overall", "filter_diversity"
                ),
                gpu_hours=GPU_HOURS,
                **(data or dict(dataset=SOURCE, layout=SOURCE_LAYOUT, needs=("train", "val"))),
            )
        )
        for downstream, (title, layout, needs, _, metric) in DOWNSTREAM.items():
            out.append(
                Row(
                    name=f"{recipe}-{downstream}",
                    title=f"{recipe}: linear probe on {title}",
                    metric=metric,
                    paper=None,
                    source=NO_PAPER,
                    steps=transfer_steps(ctx, recipe, downstream),
                    result=lambda out_dir, r=recipe, d=downstream: read_json_metric(
                        out_dir / "transfer" / d / r / "transfer.json", "value"
                    ),
                    requires=(SOURCE,) if not dino else (SOURCE, downstream),  # pretraining (and the DINO release)
                    **(data or dict(dataset=downstream, layout=layout, needs=needs)),
                )
            )
    # The report compares the pretrainings that can run: the DINO ResNet-50 one only when its release is on disk.
    has_dino = ctx.smoke or (ctx.data_root / DINO / DINO_R50).is_file()
    compared = [r for r in PRETRAININGS if has_dino or r != "dino-usi-resnet50"]
    for downstream, (title, layout, needs, _, _) in DOWNSTREAM.items():
        folder = ctx.run("transfer", downstream)
        transfers = [step for recipe in compared for step in transfer_steps(ctx, recipe, downstream)]
        records = [str(Path(folder) / recipe) for recipe in compared]
        report = ("diversity", "report", *records, "--output", str(Path(folder) / "report.md"))
        report += (
            "--plot",
            str(Path(folder) / "transfer_vs_diversity.png"),
            "--json",
            str(Path(folder) / "report.json"),
        )
        out.append(
            Row(
                name=f"report-{downstream}",
                title=f"{title}: transfer vs diversity over the pretrainings (table, plot)",
                metric="Spearman rho (filter diversity, transfer)",
                paper=None,
                source=NO_PAPER + "; the paper's claim is a positive correlation",
                dataset=downstream,
                requires=(SOURCE,),  # every compared pretraining trains on it
                layout=layout,
                needs=needs,
                steps=(*transfers, Step(f"report-{downstream}", report)),
                result=lambda out_dir, d=downstream: read_json_metric(
                    out_dir / "transfer" / d / "report.json", "spearman", "filter_diversity"
                ),
            )
        )
    return out


def make_smoke_data(root: Path) -> None:
    import timm
    import torch

    from miil.core.miniature import make_coco2014, make_imagenet

    make_imagenet(root / SOURCE, num_classes=SMOKE_CLASSES, train_per_class=4, val_per_class=2)
    # CIFAR-100 as class folders: ten other classes (other digits and colours), a test split instead of val.
    cifar = make_imagenet(root / "cifar100", seed=1, num_classes=10, train_per_class=3, val_per_class=3)
    (cifar / "val").rename(cifar / "test")
    make_coco2014(root / "coco", train_images=16, val_images=12, unannotated_images=1)
    # Stand-ins for the DINO releases: tiny backbones (seeded random weights) as bare state dicts, the release layout.
    torch.manual_seed(0)
    (root / DINO).mkdir(parents=True, exist_ok=True)
    for name, model in ((DINO_R50, "test_resnet"), (DINO_VIT_SMOKE, "test_vit")):
        torch.save(timm.create_model(model, num_classes=0).state_dict(), root / DINO / name)


PAPER = Paper("diversity", "Diverse ImageNet Models Transfer Better", "2204.09134", rows, make_smoke_data)

if __name__ == "__main__":
    sys.exit(main(PAPER))
