"""Reproduce "ImageNet-21K Pretraining for the Masses" (arXiv 2104.10972) with miil-in21k.

The chain of the paper: the extracted fall11 release -> ``miil in21k preprocess`` (ImageNet-21K-P: classes with at
most 500 images dropped, the first 50 files of each class set aside for validation, squish 224) -> semantic-softmax
pretraining of each model of the model zoo (``miil in21k train --recipe semantic-softmax-<model>``, then ``validate
--json``: semantic top-1 on the fall11 validation set) -> transfer: CIFAR-100 fine-tuning of our Mixer-B-16
pretraining with the ``Transfer_learning.md`` recipe. Also the single-label softmax baseline and semantic KD (the
zoo numbers include KD, the authors' issue #35). The preprocessing runs once and every row reuses it.

    uv run python tools/in21k/reproduce.py --data-root /data --gpus 8      # fall11/ and cifar100/ under /data
    uv run python tools/in21k/reproduce.py --smoke --out-dir /tmp/smoke-in21k

Not here: the ImageNet-1K fine-tuning column of the zoo (the authors never published that recipe).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reproduce_driver import Context, Paper, Row, Step, main, read_json_metric

# A smoke run: a tiny timm CNN at 32 px, one epoch of two steps, no augmentation beyond the recipe's, on the CPU.
SMOKE = (
    "--model", "test_resnet", "--pretrained", "false", "--img-size", "32", "--epochs", "1",
    "--max-steps-per-epoch", "2", "--batch-size", "8", "--amp", "false", "--device", "cpu", "--num-workers", "0",
    "--progress", "false",
)  # fmt: skip
# The miniature release has 6 images per class (2 in a class that the threshold drops) instead of 500+.
SMOKE_PREPROCESS = ("--small-class-threshold", "3", "--val-per-class", "2", "--size", "32",
                    "--num-workers", "1", "--progress", "false")  # fmt: skip

RELEASE_LAYOUT = "fall11/<wnid>/<wnid>_<n>.JPEG (fall11_whole.tar and its per-class tars extracted)"
CIFAR_LAYOUT = (
    "cifar100/train/<class>/<image>.png and cifar100/val/<class>/<image>.png (CIFAR-100 exported to class folders, "
    "the folder the original's timm train.py reads)"
)
ZOO = "MODEL_ZOO.md (the zoo models include semantic KD, authors' issue #35)"

MIXER = "the paper's model table, as quoted in the recipes (MODEL_ZOO.md lists no Mixer-B-16)"

# (row / recipe suffix, the zoo's name, its semantic top-1 on fall11 val, where that number is published)
MODELS = (
    ("mobilenetv3-large-100", "MobileNetV3-L", 73.1, ZOO),
    ("resnet50", "ResNet50", 75.6, ZOO),
    ("tresnet-m", "TResNet-M", 76.4, ZOO),
    ("tresnet-l-v2", "TResNet-L-V2", 76.7, ZOO),
    ("mixer-b16-224", "Mixer-B-16", 76.3, MIXER),
    ("vit-base-patch16-224", "ViT-B-16", 77.6, ZOO),
)


def rows(ctx: Context) -> list[Row]:
    """Preprocessing -> semantic-softmax pretraining per zoo model (+ baseline, KD) -> CIFAR-100 transfer."""
    extra = SMOKE if ctx.smoke else ()
    processed = ctx.run("imagenet21k_p")
    preprocess = Step(
        "preprocess",
        # --variant fall11 compares the counts with the published ones; the miniature has its own (none)
        ("in21k", "preprocess", ctx.data("fall11"), processed, "--variant", "none" if ctx.smoke else "fall11",
         *(SMOKE_PREPROCESS if ctx.smoke else ())),
        ok_codes=(0, 3),  # 3: finished, some unreadable files skipped (listed in preprocess_report.json)
    )  # fmt: skip

    def pretrain(recipe: str, *more: str) -> Step:
        run = ctx.run(recipe)
        argv = ("in21k", "train", "--recipe", recipe, "--data-root", processed, "--out-dir", run, *extra, *more)
        return Step(f"train-{recipe}", argv, run_dir=run)

    def validate(recipe: str, *data: str) -> Step:
        argv = ("in21k", "validate", "--weights", ctx.run(recipe), *(data or ("--data-root", processed)),
                "--json", ctx.run(f"{recipe}.json"))  # fmt: skip
        if ctx.smoke:
            argv += ("--device", "cpu", "--progress", "false")
        return Step(f"validate-{recipe}", argv, ok_codes=(0, 3))

    def metric(recipe: str, key: str):
        return lambda out: read_json_metric(out / f"{recipe}.json", "metrics", key)

    def pretraining_row(name, title, recipe, paper, source, key="semantic_top1", metric_name="semantic top-1 %"):
        return Row(
            name=name,
            title=title,
            metric=metric_name,
            paper=paper,
            source=source,
            dataset="fall11",
            layout=RELEASE_LAYOUT,
            needs=(),
            steps=(preprocess, pretrain(recipe), validate(recipe)),
            result=metric(recipe, key),
        )

    out = [
        pretraining_row(f"semantic-{suffix}", f"{name}, semantic softmax on ImageNet-21K-P (fall11)",
                        f"semantic-softmax-{suffix}", paper, source)
        for suffix, name, paper, source in MODELS
    ]  # fmt: skip
    out.append(
        pretraining_row(
            "single-label-tresnet-m",
            "TResNet-M, single-label softmax on ImageNet-21K-P (the baseline)",
            "single-label-tresnet-m",
            None,
            "the paper gives none we could read",
            key="top1",
            metric_name="top-1 %",
        )
    )
    # Semantic KD: the recipe's teacher is the released TResNet-L-V2 21K (a download); a smoke run has no network,
    # so its teacher is the smoke run's own TResNet-L-V2 pretraining.
    kd = "semantic-kd-tresnet-m"
    if ctx.smoke:
        teacher = pretrain("semantic-softmax-tresnet-l-v2")
        kd_train = pretrain(kd, "--teacher", "test_resnet", "--teacher-checkpoint",
                            ctx.run("semantic-softmax-tresnet-l-v2", "best.safetensors"))  # fmt: skip
        kd_steps = (preprocess, teacher, kd_train, validate(kd))
    else:
        kd_steps = (preprocess, pretrain(kd), validate(kd))
    out.append(
        Row(
            name="semantic-kd-tresnet-m",
            title="TResNet-M, semantic softmax + semantic KD (teacher TResNet-L-V2)",
            metric="semantic top-1 %",
            paper=76.4,
            source=ZOO,
            dataset="fall11",
            layout=RELEASE_LAYOUT,
            needs=(),
            steps=kd_steps,
            result=metric(kd, "semantic_top1"),
        )
    )
    # Transfer: CIFAR-100 from our own semantic-softmax Mixer-B-16 (the recipe alone starts from the released one).
    source_run = "semantic-softmax-mixer-b16-224"
    transfer = "transfer-cifar100-mixer-b16-miil-in21k"
    run = ctx.run(transfer)
    init = ("--pretrained", "false", "--init-checkpoint", ctx.run(source_run, "best.safetensors"))
    model = () if ctx.smoke else ("--model", "mixer_b16_224")
    transfer_train = Step(
        f"train-{transfer}",
        ("in21k", "train", "--recipe", transfer, "--data-root", ctx.data("cifar100"), "--out-dir", run, *model,
         *extra, *init),
        run_dir=run,
    )  # fmt: skip
    out.append(
        Row(
            name="transfer-cifar100-mixer-b16",
            title="CIFAR-100 fine-tuning of our 21K Mixer-B-16 (Adam, lr 2e-4)",
            metric="top-1 %",
            paper=91.1,
            source="Transfer_learning.md (original repository), Adam 1e-4 / 2e-4 row",
            dataset="cifar100",
            layout=CIFAR_LAYOUT,
            needs=("train", "val"),
            requires=("fall11",),  # the semantic pretraining it starts from
            steps=(
                preprocess,
                pretrain(source_run),
                transfer_train,
                validate(transfer, "--data-format", "folder", "--data-root", ctx.data("cifar100")),
            ),
            result=metric(transfer, "top1"),
        )
    )
    return out


def make_smoke_data(root: Path) -> None:
    """A miniature extracted fall11 release (``miil.in21k.miniature``) and a class-folder CIFAR-100 stand-in."""
    from miil.core.miniature import make_imagenet
    from miil.in21k.miniature import make_imagenet21k

    make_imagenet21k(root / "fall11", images_per_class=6, small_class_images=2, min_size=32, max_size=48)
    make_imagenet(root / "cifar100", num_classes=10, train_per_class=4, val_per_class=2, min_size=32, max_size=32)


PAPER = Paper("in21k", "ImageNet-21K Pretraining for the Masses", "2104.10972", rows, make_smoke_data)

if __name__ == "__main__":
    sys.exit(main(PAPER))
