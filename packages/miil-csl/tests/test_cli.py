"""``miil csl`` end to end: the two-stage train as one command, the dialect's flags, the released layouts read from
``--data-root`` alone, recipe-vs-data checks, the validate == best.json contract, bad inputs and untrusted files."""

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from timm.models.tresnet import TResNet

from miil.core.cli import main
from miil.core.data import make_digit_mosaics, write_multilabel_csv
from miil.core.testing import printed_warnings, write_bad_inputs, write_real_image
from miil.csl import create_csl_model, get_recipe, load_prior

TINY = ["--epochs", "1", "--max-steps-per-epoch", "6", "--progress", "false", "--device", "cpu", "--seed", "1"]
TINY_IMAGES = ["--model", "test_resnet", "--pretrained", "false", "--img-size", "32", "--batch-size", "8"]


def _best(run):
    return json.loads((run / "best.json").read_text())


def _validate_json(run, tmp_path, *extra):
    report = tmp_path / "validate.json"
    status = main(["csl", "validate", "--weights", str(run), "--progress", "false", "--json", str(report), *extra])
    return status, json.loads(report.read_text()) if report.exists() else None


def test_train_selective_two_stages_then_validate_and_infer(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["csl", "train", "--recipe", "mosaic-rps0-5-csl", "--out-dir", str(out), "--model-kwargs", '{"width": 4}']
    assert main([*args, *TINY, "--ema", "false"]) == 0
    printed = capsys.readouterr().out
    assert "RPS(0.5)" in printed and "stage 1" in printed and "plot: miil plot" in printed
    prior = load_prior(out / "prior.csv")
    assert prior.classes == [str(d) for d in range(10)]
    assert (out / "stage1_ignore" / "best.safetensors").is_file() and (out / "best.safetensors").is_file()
    meta = _best(out)
    assert meta["config"]["mode"] == "selective" and meta["run_info"]["recipe"] == "mosaic-rps0-5-csl"
    assert meta["run_info"]["prior"] == str(out / "prior.csv")

    # validate with no data flags: the run's validation data, in the run's precision, gives best.json's mAP
    status, got = _validate_json(out, tmp_path)
    assert status == 0 and got["samples"] == 1000 and got["precision"] == meta["eval_precision"]
    assert got["metrics"]["mAP"] == pytest.approx(meta["metrics"]["mAP"], abs=1e-9)

    images, _ = make_digit_mosaics("test", 2, seed=5)
    paths = []
    for i, img in enumerate(images):
        paths.append(tmp_path / f"mosaic{i}.png")
        Image.fromarray(img).save(paths[-1])
    preds = tmp_path / "pred.json"
    capsys.readouterr()
    cmd = ["csl", "infer", *map(str, paths), "--weights", str(out), "--threshold", "0", "--top-k", "3"]
    assert main([*cmd, "--json", str(preds), "--progress", "false"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(str(paths[0])) and lines[0].count("(") == 3
    rows = json.loads(preds.read_text())["predictions"]
    assert [r["image"] for r in rows] == list(map(str, paths))
    assert all(len(r["labels"]) == 3 and r["labels"][0]["score"] >= r["labels"][-1]["score"] for r in rows)

    # A given prior skips stage 1; a finished run is not overwritten without --resume.
    again = tmp_path / "with_prior"
    assert main([*args[:4], "--out-dir", str(again), "--prior-path", str(out / "prior.csv"), *TINY]) == 0
    assert not (again / "stage1_ignore").exists()
    capsys.readouterr()
    assert main([*args, *TINY]) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["coco", "openimages", "lvis"])
def test_released_layouts_need_only_the_data_root(fmt, coco_root, openimages_root, lvis_root, tmp_path, capsys):
    root = {"coco": coco_root, "openimages": openimages_root, "lvis": lvis_root}[fmt]
    recipe = {"coco": "coco-fpc1000-negative-ce", "openimages": "openimages-v6-tresnet-m-csl", "lvis": "lvis-csl"}[fmt]
    out = tmp_path / "run"
    cmd = ["csl", "train", "--recipe", recipe, "--data-root", str(root), *TINY_IMAGES, "--out-dir", str(out)]
    assert main([*cmd, *TINY, "--bottleneck-features", "none" if fmt != "openimages" else "8"]) == 0
    meta = _best(out)
    data = meta["run_info"]["data"]
    assert data["format"] == fmt and data["val"] is not None and len(meta["run_info"]["classes"]) == 10
    if fmt == "openimages":  # a selective recipe: both stages ran; names from mid_to_classes.pth
        assert (out / "prior.csv").is_file() and meta["run_info"]["class_names"]["/m/0dgt3x"] == "Digit three"
    capsys.readouterr()
    status, got = _validate_json(out, tmp_path)
    assert status == 0 and got["samples"] == 24
    assert got["metrics"]["mAP"] == pytest.approx(meta["metrics"]["mAP"], abs=1e-9)
    if fmt == "openimages":  # the official per-split label file overrides data.csv; its images are in validation/
        labels = str(root / "validation-annotations-human-imagelabels.csv")
        status, got = _validate_json(out, tmp_path, "--val-labels", labels)
        assert status == 0 and got["data"]["images"] == str(root / "validation") and got["samples"] == 24
        assert got["metrics"]["mAP"] == pytest.approx(meta["metrics"]["mAP"], abs=1e-9)  # the same labels


def test_recipe_and_data_are_checked_before_training(coco_root, openimages_root, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["csl", "train", "--data-format", "mosaic", "--out-dir", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("miil csl train: error: the mosaic data are 1-channel")
    assert "--recipe mosaic-" in err[0]
    assert main(["csl", "train", "--data-format", "openimages", "--data-root", str(openimages_root)]) == 2
    err = capsys.readouterr().err
    assert "simulates partial labels (FPC)" in err and "--recipe openimages-v6-" in err and "--simulate none" in err
    assert main(["csl", "train", "--data-root", str(tmp_path), "--out-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "COCO image folder" in err and "--data-root or --train-split" in err
    labels = ["--train-labels", str(tmp_path / "nope.json")]
    assert main(["csl", "train", "--data-root", str(coco_root), *labels, "--out-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "nope.json does not exist" in err and "--train-labels" in err
    assert main(["csl", "train", "--data-root", str(coco_root), "--model-kwargs", "[1]", "--out-dir", str(out)]) == 2
    assert "not an object" in capsys.readouterr().err and not out.exists()


def _bad_csv(root):
    """``train.csv`` / ``val.csv`` whose rows mix good images with each kind of bad input."""
    bad = write_bad_inputs(root / "bad", good=write_real_image(root / "bad" / "good.jpg"))
    images, targets = make_digit_mosaics("train", 16, seed=3)
    rows = []
    for i, img in enumerate(images):
        rows.append(f"img/{i}.png")
        (root / "img").mkdir(exist_ok=True)
        Image.fromarray(np.stack([img] * 3, -1)).save(root / rows[-1])
    rows += [str(p.relative_to(root)) for p in bad.values()]
    full = np.concatenate([targets, np.eye(10)[: len(bad)]])
    for split in ("train", "val"):
        write_multilabel_csv(root / f"{split}.csv", rows, full, [f"digit{d}" for d in range(10)])
    return bad


def test_bad_inputs_are_skipped_reported_and_counted(tmp_path, capsys):
    bad = _bad_csv(tmp_path / "data")
    out = tmp_path / "run"
    cmd = ["csl", "train", "--recipe", "coco-rps0-5-csl", "--data-format", "csv", "--data-root", str(tmp_path / "data")]
    cmd += [*TINY_IMAGES, *TINY, "--out-dir", str(out)]
    with printed_warnings():  # what a user reads on stderr (pytest would record the warnings instead)
        assert main(cmd) == 3  # both stages ran; the unreadable files were skipped
    captured = capsys.readouterr()
    warned = {line.split("file ")[1].split(":")[0] for line in captured.err.splitlines() if "warning: skipping" in line}
    assert warned == set(map(str, bad.values()))
    assert "skipped 5 unreadable input(s)" in captured.out and (out / "prior.csv").is_file()

    status, got = _validate_json(out, tmp_path)
    assert status == 3 and got["samples"] == 16
    assert got["metrics"]["mAP"] == pytest.approx(_best(out)["metrics"]["mAP"], abs=1e-9)
    reasons = {d["file"]: d["reason"] for d in got["skipped"]}
    assert set(reasons) == set(map(str, bad.values())) and reasons[str(bad["wrong_type"])].startswith("not a readable")
    assert reasons[str(bad["missing"])] == "missing" and reasons[str(bad["folder"])] == "a folder, not a file"

    preds = tmp_path / "p.json"
    inputs = [str(tmp_path / "data" / "img" / "0.png"), *map(str, bad.values())]
    assert main(["csl", "infer", *inputs, "--weights", str(out), "--json", str(preds), "--progress", "false"]) == 3
    got = json.loads(preds.read_text())
    assert [p["image"] for p in got["predictions"]] == inputs[:1] and got["samples"] == 1
    assert {d["file"] for d in got["skipped"]} == set(inputs[1:])
    capsys.readouterr()
    assert main(["csl", "infer", *inputs, "--weights", str(out), "--strict", "--progress", "false"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("miil csl infer: error: cannot read image file")
    assert main(["csl", "validate", "--weights", str(out), "--strict", "--progress", "false"]) == 2


class _Payload:
    """A pickle that would create a file when unpickled: what a malicious checkpoint carries."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_untrusted_files_are_refused(openimages_root, tmp_path, capsys):
    target = tmp_path / "created-by-payload"
    evil_pth = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(2)}, "extra": _Payload(target)}, evil_pth)
    evil_pkl = tmp_path / "evil.pkl"
    evil_pkl.write_bytes(pickle.dumps(_Payload(target)))
    image = str(write_real_image(tmp_path / "x.jpg"))
    train = ["csl", "train", "--recipe", "openimages-v6-tresnet-m-negative", "--data-root", str(openimages_root)]
    train += [*TINY_IMAGES, *TINY, "--out-dir", str(tmp_path / "run")]
    for evil in (evil_pth, evil_pkl):
        for argv in (
            [*train[:-1], str(tmp_path / "run"), "--init-checkpoint", str(evil)],
            [*train, "--classes", str(evil)],
            ["csl", "validate", "--weights", str(evil)],
            ["csl", "infer", image, "--weights", str(evil)],
            ["csl", "convert", str(evil), str(tmp_path / "out.safetensors")],
        ):
            assert main(argv) == 2, argv
            err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
            assert len(err) == 1 and err[0].startswith(f"miil csl {argv[1]}: error: "), (argv, err)
            assert not target.exists(), argv
    assert not (tmp_path / "run").exists()


def test_convert_original_checkpoint_then_infer(tmp_path, capsys, randomize, to_original_layout):
    kwargs = {"layers": [1, 1, 1, 1], "width_factor": 0.25}
    ours = create_csl_model(TResNet(num_classes=0, **kwargs), num_classes=3)
    randomize(ours)
    ckpt = tmp_path / "MS_COCO_tiny.pth"
    torch.save({"model": to_original_layout(ours), "num_classes": 3, "idx_to_class": {0: "a", 1: "b", 2: "c"}}, ckpt)
    out = tmp_path / "converted.safetensors"
    cmd = ["csl", "convert", str(ckpt), str(out), "--model", "tresnet_m", "--model-kwargs", json.dumps(kwargs)]
    assert main([*cmd, "--img-size", "64"]) == 0
    assert "3 classes" in capsys.readouterr().out and out.with_suffix(".json").is_file()
    img = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(img)
    preds = tmp_path / "pred.json"
    assert main(["csl", "infer", str(img), "--weights", str(out), "--threshold", "0", "--json", str(preds)]) == 0
    labels = json.loads(preds.read_text())["predictions"][0]["labels"]
    from miil.csl.pipeline import eval_transform, load_run_model

    model, cfg, _ = load_run_model(out)
    ours.eval()
    x = eval_transform(cfg)(Image.open(img).convert("RGB"))[None]
    with torch.no_grad():
        expected = torch.sigmoid(ours(x))[0]
    assert {d["class"]: d["score"] for d in labels} == pytest.approx(
        {c: float(p) for c, p in zip("abc", expected)}, abs=1e-5
    )


def test_recipes_and_help(capsys):
    assert main(["csl", "recipes"]) == 0
    listing = capsys.readouterr().out
    for name in ("coco-fpc1000-csl", "coco-rps0-5-ignore-ce", "openimages-v6-tresnet-m-csl", "lvis-csl"):
        assert name in listing
    assert "coco, FPC(1000), mode selective" in listing
    assert main(["csl", "recipes", "coco-fpc1000-csl"]) == 0
    shown = capsys.readouterr().out
    assert "--simulate-param" in shown and "1000.0" in shown and "--prior-threshold" in shown
    with pytest.raises(SystemExit):
        main(["csl", "train", "--help"])
    assert "--likelihood-topk" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["csl", "train", "--recipe", "nope"])
    # earlier snake-case names still reach their rows through the library
    assert get_recipe("coco_rps0.5_csl", epochs=2) == get_recipe("coco-rps0-5-csl", epochs=2)


def test_recipe_validation():
    from miil.csl import CSLConfig

    assert get_recipe("coco-rps0-5-csl", epochs=2).epochs == 2
    for bad in (dict(mode="positive"), dict(data_format="voc"), dict(simulate="xyz"), dict(topk_scope="image")):
        with pytest.raises(ValueError):
            CSLConfig(**bad)


def test_default_recipe_trains_on_a_coco_layout_of_real_photos(tmp_path, capsys):
    """The default recipe (COCO, FPC(1000), CSL with the prior from a first ignore-mode stage), as a user runs it,
    on real photos in the COCO instances layout; only the model, sizes and length are made tiny."""
    from miil.core.testing import write_image_folder

    paths = write_image_folder(tmp_path / "coco", ["train2014"], per_class=16, seed=0, max_side=96)
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
    (tmp_path / "coco" / "annotations").mkdir()
    (tmp_path / "coco" / "annotations" / "instances_train2014.json").write_text(json.dumps(instances))
    out = tmp_path / "run"
    data = ["--data-root", str(tmp_path / "coco"), "--val-split", "train2014"]
    assert main(["csl", "train", *data, *TINY_IMAGES, "--out-dir", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "FPC(1000)" in printed and "stage 1" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["run_info"]["recipe"] == "coco-fpc1000-csl" and config["config"]["randaug"] == "rand-m9-mstd0.5"
    assert (out / "prior.csv").is_file() and (out / "best.safetensors").is_file()


def test_help_imports_no_torch():
    code = (
        "import sys\nfrom miil.csl.cli import main\n"
        "try:\n    main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "False"
