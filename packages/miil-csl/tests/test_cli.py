import json

import numpy as np
import pytest
import torch
from PIL import Image
from timm.models.tresnet import TResNet

from miil.core.cli import main
from miil.core.data import make_digit_mosaics, write_multilabel_csv
from miil.csl import create_csl_model, load_prior

TINY = [
    "--epochs",
    "1",
    "--max-steps-per-epoch",
    "6",
    "--ema",
    "false",
    "--progress",
    "false",
    "--device",
    "cpu",
    "--seed",
    "1",
]


def _json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_train_selective_two_stages_then_validate_and_infer(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["csl", "train", "--recipe", "mosaic_rps0.5_csl", "--out-dir", str(out), "--model-args", '{"width": 4}']
    assert main([*args, *TINY]) == 0
    printed = capsys.readouterr().out
    assert "RPS(0.5)" in printed and "stage 1" in printed
    result = _json_lines(printed)[-1]
    assert result["prior"] == str(out / "prior.csv") and 0 < result["best_mAP"] <= 100
    prior = load_prior(out / "prior.csv")
    assert prior.classes == [str(d) for d in range(10)]
    assert (out / "stage1_ignore" / "best.safetensors").is_file() and (out / "best.safetensors").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["mode"] == "selective" and config["run_info"]["recipe"] == "mosaic_rps0.5_csl"

    assert main(["csl", "validate", "--run", str(out), "--device", "cpu"]) == 0
    metrics = _json_lines(capsys.readouterr().out)[-1]
    assert metrics["samples"] == 1000 and metrics["mAP"] == pytest.approx(result["best_mAP"], abs=1e-3)

    images, targets = make_digit_mosaics("test", 2, seed=5)
    paths = []
    for i, img in enumerate(images):
        paths.append(tmp_path / f"mosaic{i}.png")
        Image.fromarray(img).save(paths[-1])
    assert main(["csl", "infer", *map(str, paths), "--run", str(out), "--threshold", "0", "--top-k", "3"]) == 0
    rows = _json_lines(capsys.readouterr().out)
    assert [r["image"] for r in rows] == list(map(str, paths))
    assert all(len(r["labels"]) == 3 and r["labels"][0]["score"] >= r["labels"][-1]["score"] for r in rows)

    # A given prior skips stage 1; resuming a finished run is refused without --resume.
    again = tmp_path / "with_prior"
    assert main([*args[:4], "--out-dir", str(again), "--prior-path", str(out / "prior.csv"), *TINY[:-2]]) == 0
    assert not (again / "stage1_ignore").exists()
    with pytest.raises(FileExistsError, match="--resume"):
        main([*args, *TINY])


def test_train_on_the_official_coco_layout(coco_root, tmp_path, capsys):
    ann = coco_root / "annotations"
    out = tmp_path / "run"
    cmd = ["csl", "train", "--recipe", "coco_fpc1000_negative_ce", "--data-format", "coco", "--model", "test_resnet"]
    cmd += ["--pretrained", "false", "--img-size", "32", "--batch-size", "8", "--amp", "false"]
    cmd += ["--train", str(ann / "instances_train2014.json"), "--val", str(ann / "instances_val2014.json")]
    assert main([*cmd, "--out-dir", str(out), *TINY]) == 0  # the image folders are found from the layout
    assert "FPC(1000)" in capsys.readouterr().out
    assert main(["csl", "validate", "--run", str(out), "--device", "cpu", "--batch-size", "8"]) == 0
    metrics = _json_lines(capsys.readouterr().out)[-1]
    assert metrics["samples"] == 24 and 0 <= metrics["mAP"] <= 100


def test_train_on_image_files_with_timm_backbone(tmp_path, capsys):
    images, targets = make_digit_mosaics("train", 24, seed=0)
    paths = []
    for i, img in enumerate(images):
        paths.append(f"img/{i}.png")
        (tmp_path / "img").mkdir(exist_ok=True)
        Image.fromarray(np.stack([img] * 3, -1)).save(tmp_path / paths[-1])
    classes = [f"digit{d}" for d in range(10)]
    write_multilabel_csv(tmp_path / "train.csv", paths, targets, classes)
    write_multilabel_csv(tmp_path / "val.csv", paths[:12], targets[:12], classes)
    out = tmp_path / "run"
    cmd = ["csl", "train", "--recipe", "coco_rps0.5_negative_ce", "--data-format", "csv", "--model", "test_resnet"]
    cmd += ["--pretrained", "false", "--img-size", "32", "--batch-size", "8", "--train", str(tmp_path / "train.csv")]
    cmd += ["--val", str(tmp_path / "val.csv"), "--out-dir", str(out), "--amp", "false", "--ema-decay", "0.9"]
    assert main([*cmd, *TINY]) == 0
    assert "RPS(0.5)" in capsys.readouterr().out
    assert main(["csl", "validate", "--run", str(out), "--device", "cpu", "--batch-size", "4"]) == 0
    metrics = _json_lines(capsys.readouterr().out)[-1]
    assert metrics["samples"] == 12 and {"mAP", "CF1", "OF1"} <= set(metrics)


def test_recipes_and_help(capsys):
    assert main(["csl", "recipes"]) == 0
    listing = capsys.readouterr().out
    for name in ("coco_fpc1000_csl", "coco_rps0.5_ignore_ce", "openimages_v6_tresnet_m_csl", "lvis_csl"):
        assert name in listing
    assert main(["csl", "recipes", "coco_fpc1000_csl"]) == 0
    recipe = json.loads(capsys.readouterr().out)
    assert (recipe["simulate"], recipe["simulate_param"], recipe["prior_threshold"]) == ("fpc", 1000.0, 0.5)
    with pytest.raises(SystemExit):
        main(["csl", "train", "--help"])
    assert "--likelihood-topk" in capsys.readouterr().out
    with pytest.raises(KeyError, match="unknown recipe"):
        main(["csl", "train", "--recipe", "nope"])


def test_convert_original_checkpoint_cli(tmp_path, capsys, randomize, to_original_layout):
    kwargs = {"layers": [1, 1, 1, 1], "width_factor": 0.25}
    ours = create_csl_model(TResNet(num_classes=0, **kwargs), num_classes=3)
    randomize(ours)
    ckpt = tmp_path / "MS_COCO_tiny.pth"
    torch.save({"model": to_original_layout(ours), "num_classes": 3, "idx_to_class": {0: "a", 1: "b", 2: "c"}}, ckpt)
    out = tmp_path / "converted"
    cmd = ["csl", "convert", str(ckpt), "--model", "tresnet_m", "--model-args", json.dumps(kwargs), "--img-size", "64"]
    assert main([*cmd, "--out", str(out)]) == 0
    assert _json_lines(capsys.readouterr().out)[-1]["classes"] == 3
    img = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(img)
    assert main(["csl", "infer", str(img), "--run", str(out), "--threshold", "0"]) == 0
    labels = _json_lines(capsys.readouterr().out)[0]["labels"]
    from miil.csl.pipeline import eval_transform, load_run_model

    model, cfg, _ = load_run_model(out)
    ours.eval()
    x = eval_transform(cfg)(Image.open(img).convert("RGB"))[None]
    with torch.no_grad():
        expected = torch.sigmoid(ours(x))[0]
    assert {d["class"]: d["score"] for d in labels} == pytest.approx(
        {c: round(float(p), 5) for c, p in zip("abc", expected)}, abs=2e-5
    )


def test_recipe_validation():
    from miil.csl import CSLConfig, get_recipe

    assert get_recipe("coco_rps0.5_csl", epochs=2).epochs == 2
    for bad in (dict(mode="positive"), dict(data_format="voc"), dict(simulate="xyz"), dict(topk_scope="image")):
        with pytest.raises(ValueError):
            CSLConfig(**bad)


def test_default_recipe_trains_on_real_coco_layout(tmp_path, capsys):
    """The default recipe (COCO, FPC(1000), CSL with the prior from a first ignore-mode stage), as a user runs it,
    on real photos in the COCO instances layout; only the model, sizes and length are made tiny."""
    from miil.core.testing import write_image_folder

    paths = write_image_folder(tmp_path, ["train2014"], per_class=16, seed=0, max_side=96)
    rng = np.random.default_rng(0)
    categories = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 7, "name": "dog"}]
    annotations = [
        {"id": len(paths) * k + i, "image_id": i, "category_id": c["id"], "area": 100.0}
        for i in range(len(paths))
        for k, c in enumerate(categories)
        if rng.random() < 0.5 or k == i % 3
    ]
    instances = {
        "images": [{"id": i, "file_name": p.name} for i, p in enumerate(paths)],
        "categories": categories,
        "annotations": annotations,
    }
    (tmp_path / "instances.json").write_text(json.dumps(instances))
    out = tmp_path / "run"
    data = ["--train", str(tmp_path / "instances.json"), "--train-root", str(tmp_path / "train2014")]
    data += ["--val", str(tmp_path / "instances.json"), "--val-root", str(tmp_path / "train2014")]
    tiny = ["--model", "test_resnet", "--pretrained", "false", "--img-size", "32", "--batch-size", "8"]
    assert main(["csl", "train", *data, *tiny, "--out-dir", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "FPC(1000)" in printed and "stage 1" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["run_info"]["recipe"] == "coco_fpc1000_csl" and config["config"]["randaug"] == "rand-m9-mstd0.5"
    assert (out / "prior.csv").is_file() and (out / "best.safetensors").is_file()
