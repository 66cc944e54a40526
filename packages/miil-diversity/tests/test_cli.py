"""``miil diversity measure | pretrain | transfer | report`` end to end on tiny real data written to tmp_path, plus the
per-epoch diversity log of the pretraining procedure."""

import csv
import json

import pytest

from miil.core.cli import main
from miil.core.miniature import make_imagenet


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A miniature ImageNet (train/val folders, 3 classes x 8 real digits over real photos; class k shows digit k)
    and a multi-label CSV over the same images, with the classes and an "odd digit" label."""
    root = make_imagenet(tmp_path_factory.mktemp("miniature") / "imagenet", num_classes=3, train_per_class=8,
                         val_per_class=8, min_size=24, max_size=40)  # fmt: skip
    classes = sorted(p.name for p in (root / "train").iterdir())
    for split in ("train", "val"):
        with open(root / f"{split}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["image", *classes, "odd"])
            for k, wnid in enumerate(classes):
                for image in sorted((root / split / wnid).iterdir()):
                    w.writerow([f"{split}/{wnid}/{image.name}", *(int(k == j) for j in range(3)), k % 2])
    return root


def test_pretrain_logs_diversity_every_epoch_then_transfer_and_report(data, tmp_path, capsys):
    run = tmp_path / "run"
    common = ["--device", "cpu", "--progress", "false", "--amp", "false", "--ema", "false"]
    rc = main(
        ["diversity", "pretrain", "--recipe", "ssl_usi", "--data", str(data), "--model", "test_resnet"]
        + ["--num-classes", "3", "--img-size", "32", "--epochs", "2", "--batch-size", "8", "--teacher", "none"]
        + ["--aug-repeats", "1", "--randaug", "", "--warmup-epochs", "0", "--ssl-epochs", "1"]
        + ["--ssl-batch-size", "8", "--ssl-warmup-epochs", "0", "--ssl-proj-hidden", "16", "--ssl-proj-dim", "8"]
        + ["--out-dir", str(run), *common]
    )
    assert rc == 0
    assert (run / "ssl" / "best.safetensors").is_file()
    rows = [json.loads(line) for line in (run / "supervised" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:
        val = row["val"]
        assert 0.0 <= val["top1"] <= 100.0 and 0.0 < val["filter_diversity"] <= 1.0
        assert val["effective_rank"] >= 1.0 and 0.0 <= val["feature_correlation"] <= 1.0
    config = json.loads((run / "supervised" / "config.json").read_text())
    assert config["config"]["alpha_kd"] == 5.0 and config["run_info"]["init"] == "ssl"

    out = tmp_path / "measure.json"
    assert (
        main(
            [
                "diversity",
                "measure",
                "--run",
                str(run / "supervised"),
                "--data",
                str(data / "val"),
                "--img-size",
                "32",
                "--no-progress",
                "--output",
                str(out),
                "--per-layer",
            ]
        )
        == 0
    )
    measured = json.loads(out.read_text())
    assert measured["images"] == 24 and "layer4" in measured["per_layer"]
    assert measured["overall"]["filter_diversity"] == pytest.approx(rows[-1]["val"]["filter_diversity"], abs=0.05)

    records = []
    for mode, recipe, train, val in (
        ("linear", "linear_probe", data / "train", data / "val"),
        ("finetune", "fine_tune", data / "train.csv", data / "val.csv"),
    ):
        out_dir = tmp_path / f"transfer-{mode}"
        task = "single" if mode == "linear" else "multi"
        rc = main(
            ["diversity", "transfer", "--run", str(run / "supervised"), "--recipe", recipe, "--task", task]
            + ["--train", str(train), "--val", str(val), "--root", str(data), "--img-size", "32", "--epochs", "2"]
            + ["--batch-size", "8", "--out-dir", str(out_dir), "--progress", "false", "--name", f"m-{mode}"]
        )
        assert rc == 0
        record = json.loads((out_dir / "transfer.json").read_text())
        assert record["mode"] == mode and record["metric"] == ("top1" if task == "single" else "mAP")
        assert 0.0 <= record["value"] <= 100.0 and 0.0 < record["diversity"]["filter_diversity"] <= 1.0
        if mode == "finetune":
            assert json.loads((out_dir / "config.json").read_text())["config"]["lr"] == 1e-4  # fine_tune's own lr
        records.append(out_dir)
    capsys.readouterr()
    plot, table = tmp_path / "plot.png", tmp_path / "report.md"
    assert main(["diversity", "report", *map(str, records), "--output", str(table), "--plot", str(plot)]) == 0
    assert plot.stat().st_size > 1000
    text = table.read_text()
    assert "m-linear" in text and "m-finetune" in text and "filter_diversity" in text


def test_bad_inputs_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        main(["diversity", "report", str(tmp_path / "nope.json")])
    with pytest.raises(FileNotFoundError, match="neither a folder"):
        main(["diversity", "measure", "--model", "test_resnet", "--data", str(tmp_path / "x.txt"), "--device", "cpu"])
    with pytest.raises(ValueError, match="init=checkpoint needs"):
        main(["diversity", "pretrain", "--init", "checkpoint", "--data", str(tmp_path)])


@pytest.mark.slow
@pytest.mark.ddp
def test_pretrain_under_torchrun_two_processes(data, tmp_path):
    import os
    import subprocess
    import sys

    run = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "miil.core.cli", "diversity", "pretrain", "--recipe", "ssl_usi", "--data", str(data),
        "--model", "test_resnet", "--num-classes", "3", "--img-size", "32", "--epochs", "1", "--batch-size", "4",
        "--teacher", "none", "--aug-repeats", "1", "--randaug", "", "--warmup-epochs", "0", "--ssl-epochs", "1",
        "--ssl-batch-size", "4", "--ssl-warmup-epochs", "0", "--ssl-proj-hidden", "16", "--ssl-proj-dim", "8",
        "--device", "cpu", "--progress", "false", "--amp", "false", "--ema", "false", "--out-dir", str(run),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    config = json.loads((run / "supervised" / "config.json").read_text())
    assert config["world_size"] == 2
    rows = [json.loads(r) for r in (run / "supervised" / "metrics.jsonl").read_text().splitlines()]
    # 24 training digits / (4 per process x 2 processes) = 3 updates; diversity measured over both ranks' shards
    assert [r["updates"] for r in rows] == [3]
    val = rows[0]["val"]
    assert 0.0 < val["filter_diversity"] <= 1.0 and val["effective_rank"] >= 1.0
    assert (run / "ssl" / "best.safetensors").is_file()
