import json
import os
import subprocess
import sys

import pytest
import torch
from PIL import Image

from miil.core.cli import main
from miil.core.data import make_digit_mosaics, write_multilabel_csv
from miil.core.io import load_checkpoint
from miil.mldecoder import create_model

TINY = [
    "--model", "test_resnet", "--img-size", "64", "--epochs", "1", "--batch-size", "8", "--embed-dim", "16",
    "--num-heads", "2", "--ffn-dim", "32", "--amp", "false", "--device", "cpu", "--progress", "false",
    "--num-classes", "0",
]  # fmt: skip


def _mosaic_images(folder, split, n, seed):
    """Real-digit mosaics saved as RGB PNG files; returns their relative paths and targets."""
    images, targets = make_digit_mosaics(split, n, cell=10, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        name = f"{split}_{i}.png"
        Image.fromarray(img).convert("RGB").save(folder / name)
        paths.append(name)
    return paths, targets


@pytest.fixture(scope="module")
def csv_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("mosaics")
    classes = [f"digit{d}" for d in range(10)]
    for split, n, seed in (("train", 24, 0), ("test", 12, 1)):
        paths, targets = _mosaic_images(root, split, n, seed)
        write_multilabel_csv(root / f"{split}.csv", paths, targets, classes)
    return root


def test_train_validate_infer_csv(csv_data, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["mldecoder", "train", "--recipe", "coco-tresnet-m-224", "--data-format", "csv"]
    args += ["--train-labels", str(csv_data / "train.csv"), "--val-labels", str(csv_data / "test.csv")]
    assert main(args + TINY + ["--out-dir", str(run)]) == 0
    meta = json.loads((run / "best.json").read_text())
    info = meta["run_info"]
    assert info["recipe"] == "coco-tresnet-m-224" and info["classes"][0] == "digit0"
    assert info["model"]["head_kwargs"]["num_groups"] == 100 and info["normalization"] is None
    config = meta["config"]
    assert config["opt"] == "adam" and config["sched"] == "onecycle" and config["ema_decay"] == 0.9997
    assert config["epochs"] == 1 and config["img_size"] == 64  # only the given options override the recipe
    assert "mAP" in meta["metrics"]
    capsys.readouterr()

    assert main(["mldecoder", "validate", "--weights", str(run), "--data-format", "csv"]
                + ["--labels", str(csv_data / "test.csv"), "--threshold", "0.5", "--device", "cpu"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "validation (threshold 0.5): mAP" in out and "digit9" in out and "CF1" in out

    assert main(["mldecoder", "infer", str(csv_data / "test_0.png"), str(csv_data / "test_1.png"), "--weights",
                 str(run), "--threshold", "0.0", "--top-k", "3", "--device", "cpu"]) == 0  # fmt: skip
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 2 and lines[0].startswith(str(csv_data / "test_0.png")) and lines[0].count("(") == 3


def test_train_rejects_bad_options(csv_data, tmp_path):
    args = ["mldecoder", "train", "--data-format", "csv", "--train-labels", str(csv_data / "train.csv")]
    with pytest.raises(ValueError, match="--model-kwargs is not valid JSON"):
        main(args + TINY + ["--out-dir", str(tmp_path / "x"), "--model-kwargs", "{oops"])
    with pytest.raises(ValueError, match="expects 80 classes"):
        main(args + TINY[:-2] + ["--out-dir", str(tmp_path / "y")])


def test_single_label_folder_training(tmp_path, capsys):
    images, targets = make_digit_mosaics("train", 16, cell=10, seed=4, min_digits=1, max_digits=1)
    for i, (img, y) in enumerate(zip(images, targets)):
        folder = tmp_path / "data" / f"class{int(y.argmax()) % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).convert("RGB").save(folder / f"{i}.png")
    run = tmp_path / "run"
    args = ["mldecoder", "train", "--recipe", "imagenet-resnet50-224", "--data-format", "folder"]
    args += ["--train-root", str(tmp_path / "data"), "--val-root", str(tmp_path / "data"), "--out-dir", str(run)]
    args += TINY + ["--opt", "adamw", "--lr", "1e-3", "--warmup-epochs", "0", "--randaug", "rand-m7-mstd0.5"]
    assert main(args) == 0
    meta = json.loads((run / "best.json").read_text())
    assert meta["run_info"]["task"] == "singlelabel" and "top1" in meta["metrics"]
    assert meta["config"]["mixup"] == 0.1 and meta["config"]["single_label_loss"] == "bce"
    capsys.readouterr()
    main(["mldecoder", "validate", "--weights", str(run), "--data-format", "folder", "--root", str(tmp_path / "data")])
    assert "validation: top1" in capsys.readouterr().out


def test_zero_shot_training_and_validation(nus_root, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["mldecoder", "train", "--recipe", "nuswide-zsl-tresnet-l-224", "--data-format", "nuswide"]
    args += ["--train-root", str(nus_root), "--train-labels", str(nus_root / "data.csv")]
    args += ["--val-root", str(nus_root), "--val-labels", str(nus_root / "data.csv")]
    args += [
        "--word-vectors",
        str(nus_root / "wordvec_array.pth"),
        "--zsl-split",
        str(nus_root / "benchmark_81_v0.json"),
    ]
    args += TINY + ["--out-dir", str(run), "--query-noise", "0.1", "--random-queries", "2"]
    assert main(args) == 0
    meta = json.loads((run / "best.json").read_text())
    # sorted classes: eight five four nine one seven six three two zero; unseen: nine, seven, three
    assert meta["run_info"]["unseen"] == [3, 5, 7] and set(meta["metrics"]) >= {"ZSL_mAP", "GZSL_F1@5"}
    assert "word_vectors" not in load_checkpoint(run / "best.safetensors")
    capsys.readouterr()
    main(["mldecoder", "validate", "--weights", str(run), "--data-format", "nuswide", "--root", str(nus_root)]
         + ["--labels", str(nus_root / "data.csv"), "--device", "cpu"])  # fmt: skip
    assert "ZSL_mAP" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["coco", "voc"])
def test_train_and_validate_on_the_official_layouts(fmt, coco_root, voc_root, tmp_path, capsys):
    if fmt == "coco":
        train = ["--train-root", str(coco_root / "train2014")]
        train += ["--train-labels", str(coco_root / "annotations" / "instances_train2014.json")]
        val = ["--root", str(coco_root / "val2014"), "--labels", str(coco_root / "annotations/instances_val2014.json")]
        classes, samples = 10, 24
    else:
        devkit = str(voc_root / "VOCdevkit" / "VOC2007")
        train, val = ["--train-root", devkit, "--train-labels", "trainval"], ["--root", devkit, "--labels", "test"]
        classes, samples = 20, 24
    run = tmp_path / "run"
    args = ["mldecoder", "train", "--recipe", "coco-tresnet-m-224", "--data-format", fmt, *train]
    assert main(args + TINY + ["--out-dir", str(run)]) == 0
    meta = json.loads((run / "best.json").read_text())
    assert len(meta["run_info"]["classes"]) == classes
    capsys.readouterr()
    out = tmp_path / "metrics.json"
    assert main(["mldecoder", "validate", "--weights", str(run), "--data-format", fmt, *val, "--output", str(out)]
                + ["--device", "cpu"]) == 0  # fmt: skip
    metrics = json.loads(out.read_text())
    assert 0.0 <= metrics["mAP"] <= 100.0 and metrics["images"] == samples


def test_convert_timm_checkpoint_then_infer(csv_data, tmp_path, capsys):
    torch.manual_seed(0)
    ours = create_model("test_resnet", 10, embed_dim=16, num_heads=2, ffn_dim=32).eval()
    rename = {"proj.": "embed_standart.", "layer.attn.": "decoder.layers.0.multihead_attn.", "layer.fc": "decoder."
              "layers.0.linear", "layer.norm": "decoder.layers.0.norm", "group_fc.weight": "duplicate_pooling",
              "group_fc.bias": "duplicate_pooling_bias", "query_embed": "query_embed.weight"}  # fmt: skip
    state = dict(ours.backbone.state_dict())
    for k, v in ours.head.state_dict().items():
        src = next(s for s in rename if k.startswith(s))
        state["fc." + rename[src] + k[len(src) :]] = v
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "timm_ml_decoder.pth")
    (tmp_path / "classes.txt").write_text("\n".join(f"digit{d}" for d in range(10)))
    out = tmp_path / "converted.safetensors"
    assert main(["mldecoder", "convert", str(tmp_path / "timm_ml_decoder.pth"), str(out), "--model", "test_resnet"]
                + ["--classes", str(tmp_path / "classes.txt"), "--img-size", "64", "--no-normalize"]) == 0  # fmt: skip
    weights = load_checkpoint(out)
    x = torch.randn(1, 3, 64, 64)
    rebuilt = create_model("test_resnet", 10, embed_dim=16, num_heads=2, ffn_dim=32).eval()
    rebuilt.load_state_dict(weights)
    torch.testing.assert_close(rebuilt(x), ours(x), rtol=0, atol=0)
    capsys.readouterr()
    assert main(["mldecoder", "infer", str(csv_data), "--weights", str(out), "--device", "cpu", "--output",
                 str(tmp_path / "pred.json")]) == 0  # fmt: skip
    preds = json.loads((tmp_path / "pred.json").read_text())
    assert len(preds) == 36 and all(p["image"].endswith(".png") for p in preds)


def test_recipes_listing_and_help(capsys):
    assert main(["mldecoder", "recipes", "coco-tresnet-l-448"]) == 0
    out = capsys.readouterr().out
    assert "--lr" in out and "0.0001" in out and "tresnet_v2_l" in out
    with pytest.raises(SystemExit):
        main(["mldecoder", "train", "--help"])
    assert "--num-groups" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.ddp
def test_torchrun_two_processes(csv_data, tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "miil.core.cli"]
    cmd += ["mldecoder", "train", "--recipe", "coco-tresnet-m-224", "--data-format", "csv"]
    cmd += ["--train-labels", str(csv_data / "train.csv"), "--val-labels", str(csv_data / "test.csv")]
    cmd += TINY + ["--out-dir", str(run), "--batch-size", "4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    meta = json.loads((run / "best.json").read_text())
    assert meta["world_size"] == 2 and "mAP" in meta["metrics"]
