"""``miil mldecoder`` end to end on miniature datasets in their real layouts: the dialect's flags, the format defaults,
recipe-vs-data checks, the validate == best.json contract, bad inputs and untrusted files."""

import json
import subprocess
import sys

import pytest
import torch
from PIL import Image

from miil.core.cli import main
from miil.core.data import make_digit_mosaics, write_multilabel_csv
from miil.core.io import load_checkpoint
from miil.core.testing import printed_warnings, write_bad_inputs, write_real_image
from miil.mldecoder import create_model

TINY = [
    "--model", "test_resnet", "--img-size", "64", "--epochs", "1", "--batch-size", "8", "--embed-dim", "16",
    "--num-heads", "2", "--ffn-dim", "32", "--device", "cpu", "--progress", "false", "--num-classes", "0",
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
    """``train.csv`` and ``val.csv`` (the csv format's default splits) beside their images."""
    root = tmp_path_factory.mktemp("mosaics")
    classes = [f"digit{d}" for d in range(10)]
    for split, digits, n, seed in (("train", "train", 24, 0), ("val", "test", 12, 1)):
        paths, targets = _mosaic_images(root, digits, n, seed)
        write_multilabel_csv(root / f"{split}.csv", paths, targets, classes)
    return root


def _best(run):
    return json.loads((run / "best.json").read_text())


def test_train_validate_infer_csv(csv_data, tmp_path, capsys):
    run = tmp_path / "run"
    args = [
        "mldecoder",
        "train",
        "--recipe",
        "coco-tresnet-m-224",
        "--data-format",
        "csv",
        "--data-root",
        str(csv_data),
    ]
    assert main(args + TINY + ["--out-dir", str(run)]) == 0
    meta = _best(run)
    info = meta["run_info"]
    assert info["recipe"] == "coco-tresnet-m-224" and info["classes"][0] == "digit0"
    assert info["model"]["head_kwargs"]["num_groups"] == 100 and info["normalization"] is None
    assert info["data"]["val"]["labels"] == str(csv_data / "val.csv")  # the csv format's default val split
    config = meta["config"]
    assert config["opt"] == "adam" and config["sched"] == "onecycle" and config["ema_decay"] == 0.9997
    assert config["epochs"] == 1 and config["img_size"] == 64  # only the given options override the recipe
    assert "plot: miil plot" in capsys.readouterr().out

    # validate with no data flags: the run's validation data, in the run's precision, gives best.json's number.
    report = tmp_path / "validate.json"
    assert main(["mldecoder", "validate", "--weights", str(run), "--threshold", "0.5", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "validation (threshold 0.5, fp32): mAP" in out and "digit9" in out and "CF1" in out
    got = json.loads(report.read_text())
    assert got["metrics"]["mAP"] == pytest.approx(meta["metrics"]["mAP"], abs=1e-9)
    assert got["samples"] == 12 and got["skipped"] == [] and got["precision"] == meta["eval_precision"] == "fp32"

    preds = tmp_path / "pred.json"
    inputs = [str(csv_data / "test_0.png"), str(csv_data / "test_1.png")]
    cmd = ["mldecoder", "infer", *inputs, "--weights", str(run), "--threshold", "0.0", "--top-k", "3"]
    assert main(cmd + ["--json", str(preds), "--progress", "false"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 2 and lines[0].startswith(inputs[0]) and lines[0].count("(") == 3
    got = json.loads(preds.read_text())
    assert [p["image"] for p in got["predictions"]] == inputs and got["skipped"] == []
    assert all(len(p["labels"]) == 3 for p in got["predictions"])


def test_recipe_and_data_are_checked_before_training(csv_data, tmp_path, capsys):
    folder = tmp_path / "digits"
    for d in range(3):
        write_real_image(folder / str(d) / "a.png", index=d)
    run = tmp_path / "never"
    # The example: single-label folder data with the default (multi-label COCO) recipe.
    assert (
        main(["mldecoder", "train", "--data-format", "folder", "--data-root", str(folder), "--out-dir", str(run)]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("miil mldecoder train: error: --data-format folder holds single-label")
    assert "--recipe imagenet-resnet50-224" in err[0] and "--task singlelabel" in err[0] and not run.exists()
    # multi-label data with the single-label recipe
    args = ["mldecoder", "train", "--data-format", "csv", "--data-root", str(csv_data), "--out-dir", str(run)]
    assert main(args + ["--recipe", "imagenet-resnet50-224"]) == 2
    assert "--task multilabel" in capsys.readouterr().err
    # class count: the COCO recipe expects 80 classes, the data has 10
    assert main(args + TINY[:-2]) == 2
    assert "expects 80 classes" in capsys.readouterr().err and not run.exists()
    # missing label file, named with its flag
    assert main(args + TINY + ["--train-labels", str(tmp_path / "nope.csv")]) == 2
    err = capsys.readouterr().err
    assert "nope.csv does not exist" in err and "--train-labels" in err
    # bad --model-kwargs
    assert main(args + TINY + ["--model-kwargs", "{oops"]) == 2
    assert "--model-kwargs '{oops' is not valid JSON" in capsys.readouterr().err


def test_single_label_folder_training(tmp_path, capsys):
    images, targets = make_digit_mosaics("train", 16, cell=10, seed=4, min_digits=1, max_digits=1)
    for split in ("train", "val"):
        for i, (img, y) in enumerate(zip(images, targets)):
            folder = tmp_path / "data" / split / f"class{int(y.argmax()) % 2}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).convert("RGB").save(folder / f"{i}.png")
    run = tmp_path / "run"
    args = ["mldecoder", "train", "--recipe", "imagenet-resnet50-224", "--data-format", "folder"]
    args += ["--data-root", str(tmp_path / "data"), "--out-dir", str(run)]
    args += TINY + ["--opt", "adamw", "--lr", "1e-3", "--warmup-epochs", "0", "--randaug", "rand-m7-mstd0.5"]
    assert main(args) == 0
    meta = _best(run)
    assert meta["run_info"]["task"] == "singlelabel" and "top1" in meta["metrics"]
    assert meta["config"]["mixup"] == 0.1 and meta["config"]["single_label_loss"] == "bce"
    capsys.readouterr()
    assert main(["mldecoder", "validate", "--weights", str(run), "--progress", "false"]) == 0
    out = capsys.readouterr().out
    assert "validation (fp32): top1" in out
    top1 = float(out.split("top1 ")[1].split()[0])
    assert top1 == pytest.approx(meta["metrics"]["top1"], abs=0.006)  # printed with 2 decimals


def test_zero_shot_reads_the_nus_wide_release_by_default(nus_root, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["mldecoder", "train", "--recipe", "nuswide-zsl-tresnet-l-224", "--data-format", "nuswide"]
    args += ["--data-root", str(nus_root), "--out-dir", str(run), *TINY, "--query-noise", "0.1"]
    assert main(args + ["--random-queries", "2"]) == 0  # data.csv, word vectors and split found in the root
    meta = _best(run)
    # sorted classes: eight five four nine one seven six three two zero; unseen: nine, seven, three
    assert meta["run_info"]["unseen"] == [3, 5, 7] and set(meta["metrics"]) >= {"ZSL_mAP", "GZSL_F1@5"}
    assert "word_vectors" not in load_checkpoint(run / "best.safetensors")
    capsys.readouterr()
    report = tmp_path / "zsl.json"
    assert main(["mldecoder", "validate", "--weights", str(run), "--progress", "false", "--json", str(report)]) == 0
    got = json.loads(report.read_text())["metrics"]
    assert got["ZSL_mAP"] == pytest.approx(meta["metrics"]["ZSL_mAP"], abs=1e-9)


@pytest.mark.parametrize("fmt", ["coco", "voc"])
def test_official_layouts_need_only_the_data_root(fmt, coco_root, voc_root, tmp_path, capsys):
    root = coco_root if fmt == "coco" else voc_root / "VOCdevkit" / "VOC2007"
    classes = 10 if fmt == "coco" else 20
    run = tmp_path / "run"
    args = ["mldecoder", "train", "--recipe", "coco-tresnet-m-224", "--data-format", fmt, "--data-root", str(root)]
    assert main(args + TINY + ["--out-dir", str(run)]) == 0
    meta = _best(run)
    assert len(meta["run_info"]["classes"]) == classes
    val = meta["run_info"]["data"]["val"]
    assert val["split"] == {"coco": "val2014", "voc": "test"}[fmt]
    capsys.readouterr()
    report = tmp_path / "metrics.json"
    assert main(["mldecoder", "validate", "--weights", str(run), "--data-format", fmt, "--data-root", str(root)]
                + ["--json", str(report), "--device", "cpu", "--progress", "false"]) == 0  # fmt: skip
    got = json.loads(report.read_text())
    assert got["metrics"]["mAP"] == pytest.approx(meta["metrics"]["mAP"], abs=1e-9) and got["samples"] == 24
    if fmt == "coco":  # --val-labels overrides the layout's annotation file
        labels = ["--val-labels", str(coco_root / "annotations" / "instances_train2014.json"), "--val-split"]
        assert main(["mldecoder", "validate", "--weights", str(run), *labels, "train2014", "--json", str(report)]) == 0
        assert json.loads(report.read_text())["data"]["split"] == "train2014"


@pytest.mark.filterwarnings("ignore:the OpenImages class list has 10 classes:UserWarning")  # 9,605 in the paper
def test_openimages_release_trains_and_validates(openimages_root, tmp_path, capsys):
    root = openimages_root
    run = tmp_path / "run"
    args = ["mldecoder", "train", "--recipe", "openimages-tresnet-m-224", "--data-format", "openimages"]
    assert main(args + ["--data-root", str(root), *TINY, "--out-dir", str(run)]) == 0  # 8 images: one step
    info = _best(run)["run_info"]
    assert info["classes"] == [f"/m/0dgt{d}x" for d in range(10)]  # the class file's MIDs, in its order
    assert info["model"]["head_kwargs"]["num_groups"] == 200
    train, val = info["data"]["train"], info["data"]["val"]
    assert train["labels"] == str(root / "oidv6-train-annotations-human-imagelabels.csv")
    assert train["root"] == str(root / "train") and train["split"] is None
    assert val["labels"] == str(root / "validation-annotations-human-imagelabels.csv")
    assert val["root"] == str(root / "validation") and val["classes"] == str(root / "mid_to_classes.pth")
    assert "labels of classes outside the 10-class list dropped" in capsys.readouterr().err  # the non-trainable MID
    # validate with the run's data, then with the data flags: the number best.json recorded
    for data in ([], ["--data-format", "openimages", "--data-root", str(root)]):
        report = tmp_path / "metrics.json"
        cmd = ["mldecoder", "validate", "--weights", str(run), *data, "--json", str(report), "--progress", "false"]
        assert main(cmd) == 0
        got = json.loads(report.read_text())
        assert got["samples"] == 4 and got["metrics"]["mAP"] == pytest.approx(_best(run)["metrics"]["mAP"], abs=1e-9)
    assert "/m/0dgt9x" in capsys.readouterr().out  # the per-class report names the MIDs
    # a folder that is not the release: the missing file is named, with the layout
    empty = tmp_path / "not_openimages"
    (empty / "train").mkdir(parents=True)
    (empty / "oidv6-classes-trainable.txt").write_text("/m/0dgt0x\n")
    assert main(args + ["--data-root", str(empty), *TINY, "--out-dir", str(tmp_path / "never")]) == 2
    err = capsys.readouterr().err
    assert (
        "oidv6-train-annotations-human-imagelabels.csv" in err and "release layout" in err and "--train-labels" in err
    )
    (empty / "oidv6-classes-trainable.txt").unlink()
    assert main(args + ["--data-root", str(empty), *TINY, "--out-dir", str(tmp_path / "never")]) == 2
    err = capsys.readouterr().err
    assert "oidv6-classes-trainable.txt" in err and "put oidv6-classes-trainable.txt" in err
    assert not (tmp_path / "never").exists()


def _bad_csv(root):
    """A CSV whose rows mix good images with each kind of bad input (truncated, empty, wrong type, missing, folder)."""
    bad = write_bad_inputs(root / "bad", good=write_real_image(root / "bad" / "good.jpg"))
    good, targets = _mosaic_images(root, "train", 16, 3)
    rows = good + [str(p.relative_to(root)) for p in bad.values()]
    full = torch.cat([torch.as_tensor(targets), torch.zeros(len(bad), targets.shape[1])])
    full[len(good) :, 0] = 1
    write_multilabel_csv(root / "train.csv", rows, full, [f"digit{d}" for d in range(10)])
    write_multilabel_csv(root / "val.csv", rows, full, [f"digit{d}" for d in range(10)])
    return bad


def test_bad_inputs_are_skipped_reported_and_counted(tmp_path, capsys):
    bad = _bad_csv(tmp_path / "data")
    run = tmp_path / "run"
    args = ["mldecoder", "train", "--recipe", "coco-tresnet-m-224", "--data-format", "csv"]
    args += ["--data-root", str(tmp_path / "data"), *TINY]
    with printed_warnings():  # what a user reads on stderr (pytest would record the warnings instead)
        assert main(args + ["--out-dir", str(run)]) == 3
    captured = capsys.readouterr()
    warned = [line for line in captured.err.splitlines() if "warning: skipping unreadable file" in line]
    assert sorted(line.split("file ")[1].split(":")[0] for line in warned) == sorted(map(str, bad.values()))
    assert "skipped 5 unreadable input(s)" in captured.out
    assert {d["file"] for d in json.loads((run / "skipped.json").read_text())} == set(map(str, bad.values()))

    report = tmp_path / "v.json"
    assert main(["mldecoder", "validate", "--weights", str(run), "--json", str(report), "--progress", "false"]) == 3
    got = json.loads(report.read_text())
    assert got["samples"] == 16 and got["metrics"]["mAP"] == pytest.approx(_best(run)["metrics"]["mAP"], abs=1e-9)
    reasons = {d["file"]: d["reason"] for d in got["skipped"]}
    assert set(reasons) == set(map(str, bad.values()))
    assert reasons[str(bad["missing"])] == "missing" and reasons[str(bad["empty"])] == "empty file"
    assert reasons[str(bad["folder"])] == "a folder, not a file" and reasons[str(bad["truncated"])].startswith("trunc")
    assert "skipped 5 unreadable" in capsys.readouterr().out

    preds = tmp_path / "p.json"
    inputs = [str(tmp_path / "data" / "train_0.png"), *map(str, bad.values())]
    assert main(["mldecoder", "infer", *inputs, "--weights", str(run), "--json", str(preds)]) == 3
    got = json.loads(preds.read_text())
    assert [p["image"] for p in got["predictions"]] == inputs[:1] and got["samples"] == 1
    assert {d["file"] for d in got["skipped"]} == set(inputs[1:])
    capsys.readouterr()

    # --strict: the first unreadable input is a one-line error, status 2
    assert main(["mldecoder", "infer", *inputs, "--weights", str(run), "--strict", "--progress", "false"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("miil mldecoder infer: error: cannot read image file")
    assert main(["mldecoder", "validate", "--weights", str(run), "--strict", "--progress", "false"]) == 2
    assert main(args + ["--out-dir", str(tmp_path / "strict"), "--strict"]) == 2


class _Payload:
    """A pickle that would create a file when unpickled: what a malicious checkpoint carries."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_untrusted_files_are_refused(csv_data, tmp_path, capsys):
    import pickle

    target = tmp_path / "created-by-payload"
    evil_pth = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(2)}, "extra": _Payload(target)}, evil_pth)
    evil_pkl = tmp_path / "evil.pkl"
    evil_pkl.write_bytes(pickle.dumps(_Payload(target)))
    run = tmp_path / "run"
    train = ["mldecoder", "train", "--recipe", "coco-tresnet-m-224", "--data-format", "csv"]
    train += ["--data-root", str(csv_data), *TINY, "--out-dir", str(run)]
    image = str(csv_data / "test_0.png")
    for evil in (evil_pth, evil_pkl):
        commands = [
            train + ["--init-checkpoint", str(evil)],
            ["mldecoder", "validate", "--weights", str(evil)],
            ["mldecoder", "infer", image, "--weights", str(evil)],
            ["mldecoder", "convert", str(evil), str(tmp_path / "out.safetensors"), "--model", "test_resnet"],
        ]
        for argv in commands:
            assert main(argv) == 2, argv
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and "error:" in err[0], (argv, err)
            assert not target.exists(), argv
    # --word-vectors of a zero-shot run: a trained run, then the evil vectors
    nus = ["mldecoder", "train", "--recipe", "nuswide-zsl-tresnet-l-224", "--data-format", "nuswide"]
    from miil.mldecoder.miniature import make_nus_wide

    root = make_nus_wide(tmp_path / "nus")
    for evil in (evil_pth, evil_pkl):
        argv = nus + ["--data-root", str(root), *TINY, "--out-dir", str(tmp_path / "zsl"), "--word-vectors", str(evil)]
        assert main(argv) == 2 and not target.exists()
    assert not run.exists()


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
    source = tmp_path / "timm_ml_decoder.pth"
    options = ["--classes", str(tmp_path / "classes.txt"), "--img-size", "64", "--normalize", "false"]
    assert main(["mldecoder", "convert", str(source), str(out), "--model", "test_resnet", *options]) == 0
    weights = load_checkpoint(out)
    x = torch.randn(1, 3, 64, 64)
    rebuilt = create_model("test_resnet", 10, embed_dim=16, num_heads=2, ffn_dim=32).eval()
    rebuilt.load_state_dict(weights)
    torch.testing.assert_close(rebuilt(x), ours(x), rtol=0, atol=0)
    capsys.readouterr()
    preds = tmp_path / "pred.json"
    assert main(["mldecoder", "infer", str(csv_data), "--weights", str(out), "--json", str(preds)]) == 0
    got = json.loads(preds.read_text())
    assert len(got["predictions"]) == 36 and all(p["image"].endswith(".png") for p in got["predictions"])


def test_recipes_listing_and_help(capsys):
    assert main(["mldecoder", "recipes", "coco-tresnet-l-448"]) == 0
    out = capsys.readouterr().out
    assert "--lr" in out and "0.0001" in out and "tresnet_v2_l" in out
    assert main(["mldecoder", "recipes"]) == 0
    assert "nuswide-zsl-tresnet-l-224" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["mldecoder", "train", "--help"])
    assert "--num-groups" in capsys.readouterr().out


def test_help_imports_no_torch():
    code = (
        "import sys\nfrom miil.mldecoder.cli import main\n"
        "try:\n    main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "False"
