import json

import pytest

from miil.core.cli import main
from miil.core.io import load_checkpoint

COMMON = ["--num-classes", "3", "--img-size", "16", "--batch-size", "8", "--amp", "false", "--device", "cpu"]
COMMON += ["--progress", "false", "--warmup-epochs", "0", "--ema-decay", "0.9"]


@pytest.fixture(scope="module")
def trained_run(imagenet_root, teacher_checkpoint, tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "run"
    code = main(
        ["usi", "train", "--data", str(imagenet_root), "--model", "test_efficientnet", "--epochs", "2", *COMMON]
        + ["--teacher", "test_resnet", "--teacher-checkpoint", str(teacher_checkpoint), "--out-dir", str(run)]
    )
    assert code == 0
    return run


def test_train_writes_a_run_with_the_recipe(trained_run, imagenet_root):
    best = json.loads((trained_run / "best.json").read_text())
    cfg, info = best["config"], best["run_info"]
    assert best["config_class"] == "USIRecipe" and cfg["model"] == "test_efficientnet"
    assert (cfg["alpha_kd"], cfg["aug_repeats"], cfg["mixup"], cfg["crop_pct"]) == (5.0, 3, 0.8, 0.95)
    wnids = sorted(p.name for p in (imagenet_root / "train").iterdir())
    assert info["classes"] == wnids and info["kd"] == "online teacher"
    assert info["recipe"] == "usi"
    rows = [json.loads(x) for x in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and {"val", "val_ema"} <= set(rows[0])
    assert 0.0 <= rows[-1]["val"]["top1"] <= 100.0
    assert load_checkpoint(trained_run / "best.safetensors")


def test_validate_and_infer_from_the_run(trained_run, imagenet_root, tmp_path, capsys):
    out = tmp_path / "val.json"
    code = main(
        ["usi", "validate", "--run", str(trained_run), "--data", str(imagenet_root / "val"), "--output", str(out)]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["model"] == "test_efficientnet" and report["images"] == 12 and 0.0 <= report["top1"] <= 100.0
    assert report["crop_pct"] == 0.95 and report["img_size"] == 16
    capsys.readouterr()
    lines_file = tmp_path / "pred.jsonl"
    code = main(
        ["usi", "infer", "--run", str(trained_run), str(sorted((imagenet_root / "val").iterdir())[1]), "--topk", "2"]
        + ["--output", str(lines_file)]
    )
    assert code == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    rows = [json.loads(x) for x in lines_file.read_text().splitlines()]
    assert len(printed) == len(rows) == 4
    wnids = {p.name for p in (imagenet_root / "train").iterdir()}
    assert all(len(r["top"]) == 2 and r["top"][0]["class"] in wnids for r in rows)
    assert all(r["top"][0]["prob"] >= r["top"][1]["prob"] for r in rows)


def test_validate_a_timm_model_with_a_checkpoint(teacher_checkpoint, imagenet_root, tmp_path):
    out = tmp_path / "teacher.json"
    code = main(
        ["usi", "validate", "--model", "test_resnet", "--checkpoint", str(teacher_checkpoint)]
        + ["--data", str(imagenet_root / "val"), "--img-size", "16", "--output", str(out)]
    )
    assert code == 0 and json.loads(out.read_text())["images"] == 12


def test_precompute_logits_then_train_without_the_teacher(imagenet_root, teacher_checkpoint, tmp_path):
    logits = tmp_path / "teacher_logits.npy"
    assert (
        main(
            ["usi", "precompute-logits", "--data", str(imagenet_root / "train"), "--teacher", "test_resnet"]
            + ["--teacher-checkpoint", str(teacher_checkpoint), "--img-size", "16", "--out", str(logits)]
            + ["--device", "cpu"]
        )
        == 0
    )
    meta = json.loads(logits.with_suffix(".json").read_text())
    assert meta["num_samples"] == 24 and meta["num_classes"] == 3 and meta["missing"] == 0
    run = tmp_path / "run"
    code = main(
        ["usi", "train", "--data", str(imagenet_root), "--model", "test_resnet", "--epochs", "1", *COMMON]
        + ["--teacher-logits", str(logits), "--out-dir", str(run)]
    )
    assert code == 0
    assert json.loads((run / "best.json").read_text())["run_info"]["kd"] == "stored logits"
    with pytest.raises(ValueError, match="different training set"):
        main(
            ["usi", "train", "--train-dir", str(imagenet_root / "val"), "--model", "test_resnet", "--epochs", "1"]
            + [*COMMON, "--teacher-logits", str(logits), "--out-dir", str(tmp_path / "bad")]
        )


def test_pareto_measures_and_joins_accuracies(tmp_path, capsys):
    acc = tmp_path / "acc.csv"
    acc.write_text("model,top1\ntest_vit,61.5\n")
    out = tmp_path / "pareto"
    code = main(
        ["usi", "pareto", "--models", "test_resnet", "test_efficientnet", "test_vit"]
        + ["--accuracy", "test_resnet=70", "--accuracy", "test_efficientnet=64", "--accuracy-file", str(acc)]
        + ["--img-size", "32", "--batch-size", "2", "--iters", "2", "--warmup", "1", "--min-seconds", "0"]
        + ["--device", "cpu", "--out-dir", str(out)]
    )
    assert code == 0
    import csv

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
    assert "test_vit" in capsys.readouterr().out


def test_clear_errors(imagenet_root, tmp_path):
    with pytest.raises(SystemExit, match="no top-1 for test_vit"):
        main(["usi", "pareto", "--models", "test_vit", "--device", "cpu", "--out-dir", str(tmp_path)])
    with pytest.raises(KeyError, match="unknown recipe"):
        main(["usi", "train", "--recipe", "usi_nope", "--data", str(imagenet_root)])
    with pytest.raises(ValueError, match="has no weights"):
        main(
            ["usi", "train", "--data", str(imagenet_root), "--model", "test_resnet", "--teacher", "test_resnet"]
            + [*COMMON, "--teacher-pretrained", "false", "--out-dir", str(tmp_path / "x")]
        )
    with pytest.raises(ValueError, match="3 class folders"):
        main(
            ["usi", "train", "--data", str(imagenet_root), "--num-classes", "5", "--teacher", "none"]
            + ["--out-dir", str(tmp_path / "y")]
        )
    with pytest.raises(SystemExit, match="--data expects"):
        main(["usi", "train", "--data", str(tmp_path), "--teacher", "none"])
