"""Reproduce "Multi-label Classification with Partial Annotations using Class-aware Selective Loss" (arXiv 2110.10955)
with miil-csl.

Rows: MS-COCO 2014 with simulated partial labels, FPC(1000) and RPS(0.5), each with the four loss columns (Ignore CE,
Negative CE, Negative ASL, CSL); OpenImages V6 (TResNet-M: Ignore, Negative, CSL; TResNet-L: CSL); LVIS. A CSL row
runs the paper's chain in its ``train`` step: a temporary model trained in ``ignore`` mode, its class prior
(``prior.csv`` in the run folder), then the selective model (``miil csl train`` does the three as one command; a
``--prior-path`` would skip the first two). Each row ends with ``miil csl validate --json``.

    uv run python tools/csl/reproduce.py --data-root /data --gpus 8                  # the paper's rows
    uv run python tools/csl/reproduce.py --smoke --out-dir /tmp/smoke-csl            # miniature copies

See ``tools/reproduce_driver.py`` for ``--rows``, ``--dry-run``, resume and the results files.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reproduce_driver import Context, Paper, Row, Step, main, read_json_metric  # noqa: E402

# Tiny stand-ins for the smoke run: a timm test model at 32 px, two steps of one epoch per stage.
_SMOKE_TRAIN = (
    "--model", "test_resnet", "--pretrained", "false", "--img-size", "32", "--epochs", "1",
    "--max-steps-per-epoch", "2", "--batch-size", "8", "--num-workers", "0", "--device", "cpu", "--progress", "false",
)  # fmt: skip
# A real run reads JPEGs with 8 loader processes per GPU (the recipes default to 0: in-process, for small data).
_WORKERS = ("--num-workers", "8")
_SMOKE_EVAL = ("--device", "cpu", "--progress", "false", "--num-workers", "0", "--batch-size", "16")

# (setting, column) -> the number in the original README (TResNet-M, ImageNet-21K pretraining, 448 px).
_COCO = {
    ("fpc1000", "ignore-ce"): 76.46,
    ("fpc1000", "negative-ce"): 81.24,
    ("fpc1000", "negative-asl"): 81.64,
    ("fpc1000", "csl"): 83.44,
    ("rps0-5", "ignore-ce"): 84.90,
    ("rps0-5", "negative-ce"): 81.21,
    ("rps0-5", "negative-asl"): 81.91,
    ("rps0-5", "csl"): 85.21,
}
_SETTINGS = {"fpc1000": "FPC(1000)", "rps0-5": "RPS(0.5)"}
_COLUMNS = {"ignore-ce": "Ignore CE", "negative-ce": "Negative CE", "negative-asl": "Negative ASL", "csl": "CSL"}
_OPENIMAGES = {
    "openimages-v6-tresnet-m-ignore": ("OpenImages V6, TResNet-M, Ignore", 85.38),
    "openimages-v6-tresnet-m-negative": ("OpenImages V6, TResNet-M, Negative", 85.85),
    "openimages-v6-tresnet-m-csl": ("OpenImages V6, TResNet-M, CSL", 86.72),
    "openimages-v6-tresnet-l-csl": ("OpenImages V6, TResNet-L, CSL", 87.34),
}


def rows(ctx: Context) -> list[Row]:
    """The paper's rows; in a smoke run the same chains with the tiny overrides above."""
    train_extra = _SMOKE_TRAIN if ctx.smoke else _WORKERS
    eval_extra = _SMOKE_EVAL if ctx.smoke else _WORKERS

    def chain(recipe: str, dataset: str) -> tuple[Step, ...]:
        run = ctx.run(recipe)
        # The recipes start from timm's TResNet weights (ImageNet-21K for TResNet-M), as the paper does.
        argv = ("csl", "train", "--recipe", recipe, "--data-root", ctx.data(dataset), "--out-dir", run)
        train = Step(f"{recipe}-train", argv + train_extra, run_dir=run)
        report = ctx.run(recipe, "validate.json")
        validate = Step(f"{recipe}-validate", ("csl", "validate", "--weights", run, "--json", report, *eval_extra))
        return train, validate

    def metric(recipe: str):
        return lambda out: read_json_metric(out / recipe / "validate.json", "metrics", "mAP")

    out: list[Row] = []
    for (setting, column), paper in _COCO.items():
        recipe = f"coco-{setting}-{column}"
        out.append(
            Row(
                recipe,
                f"MS-COCO 2014, {_SETTINGS[setting]} simulated partial labels, {_COLUMNS[column]}, TResNet-M 448",
                "mAP",
                paper,
                "original README (paper, COCO table)",
                "coco",
                "coco/{train2014,val2014}/ and coco/annotations/instances_{train,val}2014.json (COCO-2014 release)",
                ("annotations/instances_train2014.json", "annotations/instances_val2014.json", "train2014", "val2014"),
                chain(recipe, "coco"),
                metric(recipe),
            )
        )
    for recipe, (title, paper) in _OPENIMAGES.items():
        out.append(
            Row(
                recipe,
                title,
                "mAP",
                paper,
                "original README (paper, OpenImages table)",
                "openimages",
                "openimages/data.csv (the CSL/ASL layout: path, positive MIDs, negative MIDs, split) with the images "
                "it lists, and mid_to_classes.pth or oidv6-classes-trainable.txt",
                ("data.csv",),
                chain(recipe, "openimages"),
                metric(recipe),
            )
        )
    out.append(
        Row(
            "lvis-csl",
            "LVIS v1 (federated labels), CSL, TResNet-M 448",
            "mAP(C)",
            78.57,
            "paper Table 4 as quoted in the authors' CSL issue #3 (third-party)",
            "lvis",
            "lvis/annotations/lvis_v1_{train,val}.json beside lvis/{train2017,val2017}/ (COCO-2017 images)",
            ("annotations/lvis_v1_train.json", "annotations/lvis_v1_val.json", "train2017", "val2017"),
            chain("lvis-csl", "lvis"),
            metric("lvis-csl"),
        )
    )
    return out


def make_smoke_data(root: Path) -> None:
    """Miniature COCO-2014, OpenImages V6 and LVIS v1 in their released layouts."""
    from miil.core.miniature import make_coco2014
    from miil.csl.miniature import make_lvis, make_openimages

    make_coco2014(root / "coco", train_images=16, val_images=8)
    make_openimages(root / "openimages", train_images=16, val_images=8)
    make_lvis(root / "lvis", train_images=16, val_images=8)


PAPER = Paper(
    "csl",
    "Multi-label Classification with Partial Annotations using Class-aware Selective Loss",
    "2110.10955",
    rows,
    make_smoke_data,
)

if __name__ == "__main__":
    sys.exit(main(PAPER))
