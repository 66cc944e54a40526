"""Reproduce PETA, "Photo Albums Event Recognition using Transformers Attention" (arXiv 2109.12499), with miil-album.

Rows: PETA on ML-CUFED, PEC and CUFED (mAP; the abstract states "above 90% mAP on all datasets", the per-dataset
table is a figure we could not retrieve), the mean-of-predictions baseline on ML-CUFED, and the correlation of the
learned CLS attention with ML-CUFED's human importance scores (the paper's image-importance experiment). Each row is
``miil album train --recipe <row>`` followed by ``miil album validate --json``; the recipes hold the settings.

    uv run python tools/album/reproduce.py --data-root /data --gpus 8        # ML_CUFED/, PEC/, CUFED/ under /data
    uv run python tools/album/reproduce.py --smoke --out-dir /tmp/smoke-album

The released ``peta_32.pth`` is validated without this script: ``miil album validate --weights peta_32.pth
--data-root ML_CUFED --json metrics.json`` (see the package README).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reproduce_driver import Context, Paper, Row, Step, main, read_json_metric

# The recipes fix everything for a real run; a smoke run shrinks the model (a tiny timm CNN, one transformer layer),
# the photos and the schedule so that every row's chain runs in seconds on a CPU.
SMOKE = (
    "--model", "test_resnet", "--pretrained", "false", "--img-size", "32", "--album-size", "4",
    "--depth", "1", "--num-heads", "4", "--ffn-dim", "16", "--epochs", "1", "--max-steps-per-epoch", "2",
    "--batch-size", "4", "--warmup-epochs", "0", "--ema", "false", "--amp", "false",
    "--device", "cpu", "--num-workers", "0", "--progress", "false",
)  # fmt: skip

CUFED_LAYOUT = (
    "{name}/images/<album id>/<photo>.jpg, {name}/event_type.json, {name}/image_importance.json, "
    "{name}/train_split.txt and {name}/test_split.txt (one album id per line)"
)
CUFED_NEEDS = ("images", "event_type.json", "image_importance.json", "train_split.txt", "test_split.txt")
PEC_LAYOUT = (
    "PEC/<event>/<album id>/<photo>.jpg (PEC's 14 event folders), PEC/train_split.txt and PEC/test_split.txt "
    "(one '<event>/<album id>' per line)"
)
ABSTRACT = "abstract: 'above 90% mAP on all datasets' (a lower bound; the per-dataset table was not retrieved)"


def rows(ctx: Context) -> list[Row]:
    """PETA's rows: one training and one validation per dataset, plus the ML-CUFED baseline."""
    extra = SMOKE if ctx.smoke else ()

    def train(recipe: str, dataset: str, data_format: str) -> Step:
        run = ctx.run(recipe)
        argv = ("album", "train", "--recipe", recipe, "--data-format", data_format, "--data-root", ctx.data(dataset),
                "--train-split", "train", "--val-split", "test", "--out-dir", run, *extra)  # fmt: skip
        return Step(f"train-{recipe}", argv, run_dir=run)

    def validate(recipe: str, dataset: str, data_format: str) -> Step:
        argv = ("album", "validate", "--weights", ctx.run(recipe), "--data-format", data_format,
                "--data-root", ctx.data(dataset), "--val-split", "test", "--json", ctx.run(f"{recipe}.json"),
                "--output", ctx.run(f"{recipe}-importance.json"))  # fmt: skip
        if ctx.smoke:
            argv += ("--device", "cpu", "--progress", "false")
        return Step(f"validate-{recipe}", argv)

    def metric(recipe: str, key: str):
        return lambda out: read_json_metric(out / f"{recipe}.json", "metrics", key)

    def row(name, title, recipe, dataset, data_format, layout, needs, paper, source, key="mAP", metric_name="mAP"):
        return Row(
            name=name,
            title=title,
            metric=metric_name,
            paper=paper,
            source=source,
            dataset=dataset,
            layout=layout,
            needs=needs,
            steps=(train(recipe, dataset, data_format), validate(recipe, dataset, data_format)),
            result=metric(recipe, key),
        )

    ml_cufed = CUFED_LAYOUT.format(name="ML_CUFED")
    return [
        row("ml-cufed-peta", "PETA (TResNet-M 21K, 6-layer transformer), ML-CUFED, 23 events, multi-label",
            "peta-ml-cufed", "ML_CUFED", "ml-cufed", ml_cufed, CUFED_NEEDS, 90.0, ABSTRACT),
        row("ml-cufed-mean", "baseline: mean of per-photo predictions (no transformer), ML-CUFED",
            "mean-ml-cufed", "ML_CUFED", "ml-cufed", ml_cufed, CUFED_NEEDS, None, "the paper gives none we could read"),
        row("ml-cufed-importance", "PETA's CLS attention (last layer) vs human importance, ML-CUFED test albums",
            "peta-ml-cufed", "ML_CUFED", "ml-cufed", ml_cufed, CUFED_NEEDS, None,
            "the paper gives none we could read (a figure)", key="spearman_last_layer", metric_name="Spearman"),
        row("pec-peta", "PETA, PEC, 14 events", "peta-pec", "PEC", "pec", PEC_LAYOUT,
            ("train_split.txt", "test_split.txt"), 90.0, ABSTRACT),
        row("cufed-peta", "PETA, CUFED (single-label), 23 events", "peta-cufed", "CUFED", "cufed",
            CUFED_LAYOUT.format(name="CUFED"), CUFED_NEEDS, 90.0, ABSTRACT),
    ]  # fmt: skip


def make_smoke_data(root: Path) -> None:
    """Miniature ML-CUFED, PEC and CUFED in their on-disk layouts (``miil.album.miniature``)."""
    from miil.album.miniature import make_cufed, make_ml_cufed, make_pec

    make_ml_cufed(root / "ML_CUFED", train_albums_per_event=2, test_albums_per_event=1)
    make_pec(root / "PEC", train_albums_per_event=2, test_albums_per_event=1)
    make_cufed(root / "CUFED", train_albums_per_event=2, test_albums_per_event=1)


PAPER = Paper("album", "PETA: Photo Albums Event Recognition using Transformers Attention", "2109.12499", rows,
              make_smoke_data)  # fmt: skip

if __name__ == "__main__":
    sys.exit(main(PAPER))
