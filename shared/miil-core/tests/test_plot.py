"""``miil plot RUN_DIR``: a real run's metrics.jsonl drawn into a valid PNG; rows with missing keys still draw."""

import json

import torch.nn as nn
from PIL import Image

from miil.core.cli import main
from miil.core.data import DigitsDataset
from miil.core.metrics import AccuracyMeter
from miil.core.plot import plot_run
from miil.core.train import TrainConfig, Trainer


def test_plot_of_a_real_training_run(tmp_path, capsys):
    run = tmp_path / "run"
    cfg = TrainConfig(
        out_dir=str(run),
        epochs=3,
        batch_size=64,
        lr=1e-2,
        ema=True,
        ema_decay=0.9,
        max_steps_per_epoch=3,
        progress=False,
        device="cpu",
    )
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    Trainer(
        model,
        nn.CrossEntropyLoss(),
        DigitsDataset("train"),
        cfg,
        val_dataset=DigitsDataset("test"),
        meter=AccuracyMeter(topk=(1,)),
    ).fit()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and {"train_loss", "lr", "val", "val_ema"} <= set(rows[0])
    capsys.readouterr()
    assert main(["plot", str(run)]) == 0
    png = run / "metrics.png"
    assert capsys.readouterr().out.strip() == f"wrote {png}"
    with Image.open(png) as img:
        img.verify()
    with Image.open(png) as img:
        assert img.format == "PNG" and img.size[0] > 400 and img.size[1] > 200
        # Not a blank canvas: the curves put several distinct colours on it.
        assert len(img.convert("RGB").getcolors(maxcolors=1 << 16) or []) > 10
    other = tmp_path / "elsewhere" / "curves.png"
    assert main(["plot", str(run), "--output", str(other)]) == 0 and other.is_file()


def test_rows_with_missing_keys_still_draw(tmp_path):
    rows = [
        {"epoch": 0, "train_loss": 2.0},
        {"epoch": 1, "train_loss": 1.5, "lr": 0.1, "val": {"mAP": 40.0, "loss": 1.7}},
        {"epoch": 2, "lr": 0.05, "val": {"mAP": 55.0}, "val_ema": {"mAP": 57.5, "images": 100}},
        {},
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    out = plot_run(tmp_path)
    assert out == tmp_path / "metrics.png"
    with Image.open(out) as img:
        img.verify()
