"""``miil usi`` end to end on the miniature ImageNet as ``make_imagenet`` writes it (``ROOT/train``, ``ROOT/val``):
train with the defaults of the layout, then validate (the metric that picked best), infer, convert, precompute
logits and pareto, and the one-line errors of the dialect."""

import csv
import json

import pytest
import timm
import torch

from miil.core.cli import main
from miil.core.io import load_checkpoint

TINY = ["--num-classes", "3", "--img-size", "16", "--batch-size", "8", "--device", "cpu"]
TINY += ["--progress", "false", "--warmup-epochs", "0", "--ema-decay", "0.9"]


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
def trained_run(imagenet_root, teacher_checkpoint, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    # --data-root alone: the train/ and val/ splits of the ImageNet layout are the defaults
    code = main(
        ["usi", "train", "--data-root", str(imagenet_root), "--model", "test_efficientnet", "--epochs", "2", *TINY]
        + ["--teacher", "test_resnet", "--teacher-checkpoint", str(teacher_checkpoint), "--out-dir", str(run_dir)]
    )
    assert code == 0
    return run_dir


def test_train_reads_the_imagenet_layout_by_default(trained_run, imagenet_root):
    best = json.loads((trained_run / "best.json").read_text())
    cfg, info = best["config"], best["run_info"]
    assert best["config_class"] == "USIRecipe" and cfg["model"] == "test_efficientnet"
    assert (cfg["kd_weight"], cfg["aug_repeats"], cfg["mixup"], cfg["crop_pct"]) == (5.0, 3, 0.8, 0.95)
    wnids = sorted(p.name for p in (imagenet_root / "train").iterdir())
    assert info["classes"] == wnids and info["kd"] == "online teacher" and info["recipe"] == "usi"
    assert info["train_dir"] == str(imagenet_root / "train") and info["val_dir"] == str(imagenet_root / "val")
    rows = [json.loads(x) for x in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and {"val", "val_ema"} <= set(rows[0])
    assert 0.0 <= rows[-1]["val"]["top1"] <= 100.0
    assert load_checkpoint(trained_run / "best.safetensors")


def test_validate_reports_the_metric_that_picked_best(trained_run, imagenet_root, tmp_path, capsys):
    out = tmp_path / "val.json"
    code, printed, _ = run(capsys, "usi", "validate", "--weights", trained_run, "--data-root", imagenet_root,
                           "--json", out, "--progress", "false")  # fmt: skip
    assert code == 0
    best = json.loads((trained_run / "best.json").read_text())
    report = json.loads(out.read_text())
    assert report["precision"] == best["eval_precision"] == "fp32"
    assert report["metrics"]["top1"] == best["metrics"]["top1"]  # exactly: same weights, data, transform, precision
    assert report["metrics"]["loss"] == pytest.approx(best["metrics"]["loss"], rel=1e-6)
    assert report["samples"] == 12 and report["skipped"] == [] and report["model"] == "test_efficientnet"
    assert (report["img_size"], report["crop_pct"]) == (16, 0.95)
    assert f"top1 {best['metrics']['top1']:.4g}%" in printed


def test_infer_from_the_run(trained_run, imagenet_root, tmp_path, capsys):
    folder = sorted((imagenet_root / "val").iterdir())[1]
    out = tmp_path / "pred.json"
    code, printed, _ = run(capsys, "usi", "infer", "--weights", trained_run, folder, "--top-k", "2", "--json", out)
    assert code == 0
    lines = [line for line in printed.splitlines() if "\t" in line]
    report = json.loads(out.read_text())
    rows = report["predictions"]
    assert len(lines) == len(rows) == 4 and report["samples"] == 4 and report["skipped"] == []
    assert [r["file"] for r in rows] == [str(p) for p in sorted(folder.iterdir())]
    wnids = {p.name for p in (imagenet_root / "train").iterdir()}
    assert all(len(r["top"]) == 2 and r["top"][0]["class"] in wnids for r in rows)
    assert all(r["top"][0]["prob"] >= r["top"][1]["prob"] for r in rows)


def test_validate_a_weights_file_with_its_model(teacher_checkpoint, imagenet_root, tmp_path, capsys):
    out = tmp_path / "teacher.json"
    code, _, _ = run(capsys, "usi", "validate", "--weights", teacher_checkpoint, "--model", "test_resnet",
                     "--data-root", imagenet_root, "--img-size", "16", "--json", out)  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert report["samples"] == 12 and report["precision"] == "fp32" and 0.0 <= report["metrics"]["top1"] <= 100.0
    code, _, err = run(capsys, "usi", "validate", "--weights", teacher_checkpoint, "--data-root", imagenet_root)
    assert code == 2 and "pass --model NAME" in err and err.count("\n") == 1


def test_convert_an_original_checkpoint_then_use_it_as_weights(imagenet_root, tmp_path, capsys):
    import argparse

    torch.manual_seed(3)
    net = timm.create_model("test_resnet", num_classes=3)
    source = tmp_path / "model_best.pth.tar"  # what the original checkpoint saver writes: weights, epoch, args
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}, "epoch": 299,
                "args": argparse.Namespace(model="test_resnet")}, source)  # fmt: skip
    target = tmp_path / "converted.safetensors"
    code, printed, _ = run(capsys, "usi", "convert", source, target, "--model", "test_resnet", "--img-size", "16")
    assert code == 0 and str(target) in printed
    converted = load_checkpoint(target)
    assert converted.keys() == net.state_dict().keys()
    assert all(torch.equal(converted[k], v) for k, v in net.state_dict().items())
    sidecar = json.loads(target.with_suffix(".json").read_text())
    assert sidecar["config"] == {"model": "test_resnet", "num_classes": 3, "img_size": 16, "crop_pct": 0.95}
    out = tmp_path / "val.json"  # the sidecar names the model: --weights alone is enough
    assert run(capsys, "usi", "validate", "--weights", target, "--data-root", imagenet_root, "--json", out)[0] == 0
    assert json.loads(out.read_text())["model"] == "test_resnet"


def test_precompute_logits_then_train_without_the_teacher(imagenet_root, teacher_checkpoint, tmp_path, capsys):
    logits = tmp_path / "teacher_logits.npy"
    code, _, _ = run(capsys, "usi", "precompute-logits", "--data-root", imagenet_root, "--teacher", "test_resnet",
                     "--teacher-checkpoint", teacher_checkpoint, "--img-size", "16", "--output", logits,
                     "--device", "cpu", "--progress", "false")  # fmt: skip
    assert code == 0
    meta = json.loads(logits.with_suffix(".json").read_text())
    assert meta["num_samples"] == 24 and meta["num_classes"] == 3 and meta["missing"] == 0
    run_dir = tmp_path / "run"
    code, _, _ = run(capsys, "usi", "train", "--data-root", imagenet_root, "--model", "test_resnet", "--epochs", "1",
                     *TINY, "--teacher-logits", logits, "--out-dir", run_dir)  # fmt: skip
    assert code == 0
    assert json.loads((run_dir / "best.json").read_text())["run_info"]["kd"] == "stored logits"
    # the stored logits belong to the train split: training on another split is refused before the first step
    code, _, err = run(capsys, "usi", "train", "--data-root", imagenet_root, "--train-split", "val", *TINY,
                       "--model", "test_resnet", "--teacher-logits", logits, "--out-dir", tmp_path / "bad")  # fmt: skip
    assert code == 2 and "different training set" in err and err.count("\n") == 1
    assert not (tmp_path / "bad" / "metrics.jsonl").exists()


def test_pareto_measures_and_joins_accuracies(tmp_path, capsys):
    acc = tmp_path / "acc.csv"
    acc.write_text("model,top1\ntest_vit,61.5\n")
    report = tmp_path / "val.json"  # a `validate --json` report
    report.write_text(json.dumps({"model": "test_efficientnet", "metrics": {"top1": 64.0}}))
    out = tmp_path / "pareto"
    code, printed, _ = run(
        capsys, "usi", "pareto", "--models", "test_resnet", "test_efficientnet", "test_vit",
        "--accuracy", "test_resnet=70", "--accuracy-file", acc, report,
        "--img-size", "32", "--batch-size", "2", "--iters", "2", "--warmup", "1", "--min-seconds", "0",
        "--device", "cpu", "--out-dir", out,
    )  # fmt: skip
    assert code == 0
    rows = {r["model"]: r for r in csv.DictReader((out / "pareto.csv").open())}
    assert {m: float(r["top1"]) for m, r in rows.items()} == {
        "test_resnet": 70,
        "test_efficientnet": 64,
        "test_vit": 61.5,
    }
    speeds = {m: float(r["images_per_s"]) for m, r in rows.items()}
    assert all(v > 0 for v in speeds.values())
    # Whatever the timings, the most accurate and the fastest models are on the front.
    assert rows["test_resnet"]["on_front"] == "True"
    assert rows[max(speeds, key=speeds.get)]["on_front"] == "True"
    assert (out / "pareto.png").stat().st_size > 0 and "Pareto front" in (out / "pareto.md").read_text()
    assert "test_vit" in printed


def test_recipes_verb_lists_the_kebab_case_rows(capsys):
    code, printed, _ = run(capsys, "usi", "recipes")
    assert code == 0 and "usi-levit-384-e1000" in printed and "usi_" not in printed
    code, printed, _ = run(capsys, "usi", "recipes", "usi-resnet50")
    assert code == 0 and "--kd-weight" in printed and "--label-smoothing" in printed and "resnet50" in printed


def test_user_errors_are_one_line(imagenet_root, tmp_path, capsys):
    def one_line_error(*argv) -> str:
        code, _, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1, err
        return err

    err = one_line_error("usi", "pareto", "--models", "test_vit", "--device", "cpu", "--out-dir", tmp_path)
    assert "no top-1 for test_vit" in err
    assert "invalid choice: 'usi_nope'" in one_line_error("usi", "recipes", "usi_nope")
    err = one_line_error("usi", "train", "--recipe", "usi_resnet50", "--data-root", imagenet_root)
    assert "invalid choice" in err and "usi-resnet50" in err
    # the default recipe is ImageNet's 1000 classes: the miniature's 3 are refused before anything is built
    err = one_line_error("usi", "train", "--data-root", imagenet_root, "--out-dir", tmp_path / "x")
    assert "3 class folders but the recipe 'usi' is for 1000 classes; pass --num-classes 3" in err
    no_teacher_weights = ["--teacher", "test_resnet", "--teacher-pretrained", "false", "--out-dir", tmp_path / "y"]
    err = one_line_error(
        "usi", "train", "--data-root", imagenet_root, *TINY, "--model", "test_resnet", *no_teacher_weights
    )
    assert "has no weights" in err
    err = one_line_error("usi", "train", "--data-root", tmp_path, "--teacher", "none")
    assert f"{tmp_path / 'train'} is not a folder" in err and "--train-split" in err
    err = one_line_error("usi", "train", "--data", imagenet_root)
    assert "--data-root" in err  # the old spelling is named with the dialect's
    err = one_line_error("usi", "validate", "--data-root", imagenet_root)
    assert "--weights" in err and "--pretrained" in err
