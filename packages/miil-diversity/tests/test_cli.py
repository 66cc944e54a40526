"""``miil diversity`` end to end on the miniature ImageNet (``make_imagenet``'s ``ROOT/train``, ``ROOT/val``) and a
multi-label CSV over the same images: train (SSL then USI, diversity logged every epoch), validate (the metric that
picked best), infer, measure, transfer, report and convert, and the one-line errors of the dialect."""

import csv
import json

import pytest
import timm
import torch

from miil.core.cli import main
from miil.core.io import load_checkpoint
from miil.core.miniature import make_imagenet

TRAIN = ["--recipe", "ssl-usi", "--model", "test_resnet", "--num-classes", "3", "--img-size", "32"]
TRAIN += ["--epochs", "2", "--batch-size", "8", "--teacher", "none", "--aug-repeats", "1", "--randaug", ""]
TRAIN += ["--warmup-epochs", "0", "--ssl-epochs", "1", "--ssl-batch-size", "8", "--ssl-warmup-epochs", "0"]
TRAIN += ["--ssl-proj-hidden", "16", "--ssl-proj-dim", "8", "--device", "cpu", "--progress", "false", "--ema", "false"]


def run(capsys, *argv) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``miil ARGV`` (usage errors exit through SystemExit)."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A miniature ImageNet (train/val folders, 3 classes x 8 real digits over real photos; class k shows digit k)
    and a multi-label CSV per split over the same images (``ROOT/<split>.csv``), with the classes and an "odd" label."""
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


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("train") / "run"
    assert main(["diversity", "train", "--data-root", str(data), *TRAIN, "--out-dir", str(run_dir)]) == 0
    return run_dir


def test_train_logs_diversity_every_epoch(trained):
    assert (trained / "ssl" / "best.safetensors").is_file()
    rows = [json.loads(line) for line in (trained / "supervised" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:
        val = row["val"]
        assert 0.0 <= val["top1"] <= 100.0 and 0.0 < val["filter_diversity"] <= 1.0
        assert val["effective_rank"] >= 1.0 and 0.0 <= val["feature_correlation"] <= 1.0
    config = json.loads((trained / "supervised" / "config.json").read_text())
    assert config["config"]["kd_weight"] == 5.0 and config["run_info"]["init"] == "ssl"
    assert config["run_info"]["recipe"] == "ssl-usi"


def test_validate_reports_the_metric_that_picked_best(trained, data, tmp_path, capsys):
    out = tmp_path / "val.json"
    # the pretraining run folder stands for its supervised stage
    code, printed, _ = run(capsys, "diversity", "validate", "--weights", trained, "--data-root", data, "--json", out)
    assert code == 0 and printed.startswith("miil diversity validate: test_resnet")
    best = json.loads((trained / "supervised" / "best.json").read_text())
    report = json.loads(out.read_text())
    assert report["precision"] == best["eval_precision"]
    assert report["metrics"]["top1"] == best["metrics"]["top1"]
    assert report["metrics"]["loss"] == pytest.approx(best["metrics"]["loss"], rel=1e-6)
    assert report["samples"] == 24 and report["skipped"] == []


def test_infer_from_the_run(trained, data, tmp_path, capsys):
    folder = sorted((data / "val").iterdir())[2]
    out = tmp_path / "pred.json"
    code, printed, _ = run(capsys, "diversity", "infer", "--weights", trained, folder, "--top-k", "3", "--json", out)
    assert code == 0
    rows = json.loads(out.read_text())["predictions"]
    assert len(rows) == 8 == sum("\t" in line for line in printed.splitlines())
    classes = sorted(p.name for p in (data / "train").iterdir())
    assert all({t["class"] for t in r["top"]} == set(classes) for r in rows)


def test_measure_transfer_report(trained, data, tmp_path, capsys):
    out = tmp_path / "measure.json"
    code, printed, _ = run(capsys, "diversity", "measure", "--weights", trained / "supervised", "--data-root", data,
                           "--img-size", "32", "--progress", "false", "--json", out, "--per-layer")  # fmt: skip
    assert code == 0 and "layer4" in printed
    measured = json.loads(out.read_text())
    rows = [json.loads(line) for line in (trained / "supervised" / "metrics.jsonl").read_text().splitlines()]
    assert measured["images"] == 24 and "layer4" in measured["per_layer"] and measured["skipped"] == []
    assert measured["overall"]["filter_diversity"] == pytest.approx(rows[-1]["val"]["filter_diversity"], abs=0.05)
    only = tmp_path / "only.json"
    code, _, _ = run(capsys, "diversity", "measure", "--weights", trained, "--data-root", data, "--img-size", "32",
                     "--metrics", "filter_diversity", "--json", only)  # fmt: skip
    assert code == 0 and set(json.loads(only.read_text())["overall"]) == {"filter_diversity"}

    records = []
    for mode, recipe, fmt in (("linear", "linear-probe", "folder"), ("finetune", "fine-tune", "csv")):
        out_dir = tmp_path / f"transfer-{mode}"
        task = "single" if fmt == "folder" else "multi"
        code, _, _ = run(capsys, "diversity", "transfer", "--weights", trained, "--recipe", recipe, "--task", task,
                         "--data-format", fmt, "--data-root", data, "--img-size", "32", "--epochs", "2",
                         "--batch-size", "8", "--out-dir", out_dir, "--progress", "false",
                         "--name", f"m-{mode}")  # fmt: skip
        assert code == 0
        record = json.loads((out_dir / "transfer.json").read_text())
        assert record["mode"] == mode and record["metric"] == ("top1" if task == "single" else "mAP")
        assert 0.0 <= record["value"] <= 100.0 and 0.0 < record["diversity"]["filter_diversity"] <= 1.0
        assert (
            record["source_top1"] == json.loads((trained / "supervised" / "best.json").read_text())["metrics"]["top1"]
        )
        if mode == "finetune":
            assert json.loads((out_dir / "config.json").read_text())["config"]["lr"] == 1e-4  # fine-tune's own lr
        records.append(out_dir)
    plot, table = tmp_path / "plot.png", tmp_path / "report.md"
    code, _, _ = run(capsys, "diversity", "report", *records, "--output", table, "--plot", plot)
    assert code == 0 and plot.stat().st_size > 1000
    text = table.read_text()
    assert "m-linear" in text and "m-finetune" in text and "filter_diversity" in text


def _dino_release(model: torch.nn.Module) -> dict:
    """A DINO training checkpoint of ``model``'s backbone: ``module.backbone.*`` plus DINO's projection head."""
    backbone = {f"module.backbone.{k}": v.clone() for k, v in model.state_dict().items() if not k.startswith("fc.")}
    head = {"module.head.mlp.0.weight": torch.randn(16, 8), "module.head.last_layer.weight_v": torch.randn(32, 16)}
    return {"teacher": {**backbone, **head}, "student": {}, "epoch": 100}


def test_convert_a_dino_checkpoint_then_start_training_from_it(data, tmp_path, capsys):
    torch.manual_seed(0)
    source_net = timm.create_model("test_resnet", num_classes=0)
    source = tmp_path / "checkpoint.pth"
    torch.save(_dino_release(source_net), source)
    target = tmp_path / "dino.safetensors"
    code, printed, _ = run(capsys, "diversity", "convert", source, target, "--model", "test_resnet")
    assert code == 0 and str(target) in printed
    converted = load_checkpoint(target)
    assert set(converted) == {k for k in timm.create_model("test_resnet").state_dict() if not k.startswith("fc.")}
    assert all(torch.equal(converted[k], v) for k, v in source_net.state_dict().items())
    run_dir = tmp_path / "run"
    train = [a if a != "ssl-usi" else "usi-supervised" for a in TRAIN] + ["--epochs", "1"]
    code, _, _ = run(capsys, "diversity", "train", "--data-root", data, *train, "--init", "dino",
                     "--init-checkpoint", target, "--out-dir", run_dir)  # fmt: skip
    assert code == 0
    info = json.loads((run_dir / "supervised" / "config.json").read_text())["run_info"]
    assert info["init"] == "dino" and info["init_checkpoint"] == str(target)
    assert info["classifier_at_init"] == ["fc.bias", "fc.weight"]
    # the converted backbone alone is a model to measure (its classifier stays at initialisation)
    out = tmp_path / "m.json"
    code, _, _ = run(capsys, "diversity", "measure", "--weights", target, "--data-root", data, "--img-size", "32",
                     "--metrics", "effective_rank", "--json", out)  # fmt: skip
    assert code == 0 and json.loads(out.read_text())["loaded"] == "backbone"


def test_recipes_verb_lists_both_tables(capsys):
    code, printed, _ = run(capsys, "diversity", "recipes")
    assert code == 0 and all(n in printed for n in ("ssl-usi", "dino-usi-vit-s", "linear-probe", "fine-tune"))
    code, printed, _ = run(capsys, "diversity", "recipes", "dino-usi-resnet50")
    assert code == 0 and "--init-checkpoint" in printed and "dino_resnet50_pretrain.pth" in printed


def test_user_errors_are_one_line(data, tmp_path, capsys):
    def one_line_error(*argv) -> str:
        code, _, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1, err
        return err

    assert "nope.json" in one_line_error("diversity", "report", tmp_path / "nope.json")
    err = one_line_error("diversity", "measure", "--model", "test_resnet", "--data-root", tmp_path, "--device", "cpu")
    assert f"{tmp_path / 'val'} is not a folder" in err
    err = one_line_error("diversity", "measure", "--data-root", data, "--metrics", "nope", "--model", "test_resnet")
    assert "--metrics: unknown ['nope']" in err
    err = one_line_error("diversity", "train", "--data-root", data, *TRAIN, "--init", "dino", "--out-dir", tmp_path)
    assert "--init dino" in err and "--init-checkpoint" in err
    err = one_line_error("diversity", "train", "--recipe", "dino-usi-resnet50", "--data-root", data)
    assert "dino_resnet50_pretrain.pth does not exist" in err
    err = one_line_error("diversity", "train", "--data-root", data, "--out-dir", tmp_path / "x")
    assert "is for 1000 classes; pass --num-classes 3" in err
    err = one_line_error("diversity", "transfer", "--weights", tmp_path, "--data-format", "csv", "--data-root", data)
    assert "--task multi" in err
    err = one_line_error("diversity", "transfer", "--data-root", data, "--model", "test_resnet")
    assert "--weights" in err and "--pretrained" in err
    err = one_line_error("diversity", "pretrain", "--data-root", data)
    assert "invalid choice: 'pretrain'" in err


@pytest.mark.slow
@pytest.mark.ddp
def test_train_under_torchrun_two_processes(data, tmp_path):
    import os
    import subprocess
    import sys

    run_dir = tmp_path / "ddp"
    train = list(TRAIN)
    train[train.index("--epochs") + 1] = "1"
    train[train.index("--batch-size") + 1] = "4"
    train[train.index("--ssl-batch-size") + 1] = "4"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "miil.core.cli"]
    cmd += ["diversity", "train", "--data-root", str(data), *train, "--out-dir", str(run_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    config = json.loads((run_dir / "supervised" / "config.json").read_text())
    assert config["world_size"] == 2
    rows = [json.loads(r) for r in (run_dir / "supervised" / "metrics.jsonl").read_text().splitlines()]
    # 24 training digits / (4 per process x 2 processes) = 3 updates; diversity measured over both ranks' shards
    assert [r["updates"] for r in rows] == [3]
    val = rows[0]["val"]
    assert 0.0 < val["filter_diversity"] <= 1.0 and val["effective_rank"] >= 1.0
    assert (run_dir / "ssl" / "best.safetensors").is_file()
