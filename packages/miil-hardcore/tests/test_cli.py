"""`miil hardcore ...` end to end on a few real digit images written to disk, with a tiny search space."""

import json

import pytest

from miil.core.cli import main
from miil.core.miniature import make_imagenet
from miil.hardcore import LatencyTable, load_child, load_supernet

TRAIN = ["--epochs", "1", "--batch-size", "4", "--max-steps-per-epoch", "2", "--device", "cpu", "--progress", "false"]


@pytest.fixture
def image_folders(tmp_path):
    """A miniature ImageNet (``train/<wnid>``: 3 classes x 8, ``val/<wnid>``: 3 x 4; real digits over real photos)."""
    root = make_imagenet(
        tmp_path / "imagenet", num_classes=3, train_per_class=8, val_per_class=4, min_size=16, max_size=24
    )
    return root / "train", root / "val"


@pytest.mark.slow
def test_cli_pipeline(tmp_path, tiny_space, image_folders, capsys):
    train, val = image_folders
    space_file = tmp_path / "space.json"
    space_file.write_text(json.dumps(tiny_space.to_dict()))
    lut = tmp_path / "lut.json"
    quick = ["--warmup", "0", "--repeats", "1", "--no-progress"]
    assert main(["hardcore", "lut", "--space", str(space_file), "--num-classes", "3", "--out", str(lut), *quick]) == 0
    table = LatencyTable.load(lut)
    assert table.space == tiny_space and table.timing["num_classes"] == 3
    assert main(["hardcore", "calibrate", "--lut", str(lut), "--num-archs", "2", "--update", "--no-progress"]) == 0
    assert "predicted ms" in capsys.readouterr().out
    assert (LatencyTable.load(lut).slope, LatencyTable.load(lut).intercept) != (1.0, 0.0)

    heavy, multi = tmp_path / "heavy", tmp_path / "multi"
    common = ["--space", str(space_file), "--img-size", "16", "--data-dir", str(train)]
    assert (
        main(
            [
                "hardcore",
                "train-supernet",
                "--recipe",
                "heaviest_path_digits",
                *common,
                "--val-dir",
                str(val),
                "--out-dir",
                str(heavy),
                *TRAIN,
            ]
        )
        == 0
    )
    assert (heavy / "best.safetensors").is_file() and json.loads((heavy / "best.json").read_text())["run_info"][
        "stage"
    ] == "heaviest"
    assert (
        main(
            [
                "hardcore",
                "train-supernet",
                "--recipe",
                "multipath_digits",
                *common,
                "--init",
                str(heavy),
                "--out-dir",
                str(multi),
                *TRAIN,
            ]
        )
        == 0
    )
    supernet = load_supernet(multi)
    assert supernet.space == tiny_space and supernet.num_classes == 3

    table = LatencyTable.load(lut)
    target = 0.5 * (table.latency(table.lightest()) + table.latency(table.heaviest()))
    arch_file = tmp_path / "arch.json"
    assert (
        main(
            [
                "hardcore",
                "search",
                "--supernet",
                str(multi),
                "--lut",
                str(lut),
                "--data-dir",
                str(train),
                "--latency-ms",
                str(target),
                "--steps",
                "3",
                "--batch-size",
                "4",
                "--img-size",
                "16",
                "--gamma",
                "0.5",
                "--out",
                str(arch_file),
                "--no-progress",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    found = json.loads(arch_file.read_text())
    assert found["predicted_ms"] <= target and found["feasible"] and len(found["history"]) == 3
    arch = tiny_space.parse_arch_def(found["arch_def"])
    assert table.latency(arch) == pytest.approx(found["predicted_ms"])

    child_file = tmp_path / "child.safetensors"
    assert (
        main(["hardcore", "extract", "--supernet", str(multi), "--arch", str(arch_file), "--out", str(child_file)]) == 0
    )
    child, info = load_child(child_file)
    assert info["arch_def"] == found["arch_def"] and info["classes"] == sorted(p.name for p in train.iterdir())

    ft = tmp_path / "ft"
    assert (
        main(
            [
                "hardcore",
                "finetune",
                "--supernet",
                str(multi),
                "--arch",
                str(arch_file),
                "--recipe",
                "finetune_digits",
                "--data-dir",
                str(train),
                "--val-dir",
                str(val),
                "--out-dir",
                str(ft),
                *TRAIN,
            ]
        )
        == 0
    )
    scratch = tmp_path / "scratch"
    assert (
        main(
            [
                "hardcore",
                "train",
                "--arch",
                str(arch_file),
                "--recipe",
                "finetune_digits",
                "--space",
                str(space_file),
                "--img-size",
                "16",
                "--data-dir",
                str(train),
                "--out-dir",
                str(scratch),
                *TRAIN,
            ]
        )
        == 0
    )
    assert (scratch / "best.safetensors").is_file()
    capsys.readouterr()

    assert main(["hardcore", "validate", "--checkpoint", str(ft), "--data-dir", str(val), "--device", "cpu"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["images"] == 12 and 0.0 <= metrics["top1"] <= 100.0
    image = next(sorted(val.iterdir())[1].iterdir())
    assert main(["hardcore", "infer", "--checkpoint", str(child_file), str(image), "--top-k", "2"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(line["top"]) == 2 and line["top"][0][0] in info["classes"]
    probs = [p for _, p in line["top"]]
    assert probs == sorted(probs, reverse=True) and all(0.0 <= p <= 1.0 for p in probs)


def test_cli_errors_are_clear(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="miil hardcore lut"):
        main(["hardcore", "calibrate", "--lut", str(tmp_path / "none.json")])
    with pytest.raises(FileNotFoundError, match="no weights"):
        main(["hardcore", "extract", "--supernet", str(tmp_path), "--arch", "hardcorenas_a"])
    with pytest.raises(SystemExit):
        main(["hardcore", "search", "--recipe", "hardcorenas_z"])


@pytest.mark.parametrize(
    "command",
    [pytest.param(["train-supernet"], marks=pytest.mark.slow), ["train", "--arch", "hardcorenas_a"]],
    ids=["train-supernet", "train"],
)
def test_default_recipes_train_on_real_images(command, tmp_path, capsys):
    """``train-supernet`` (heaviest path, ImageNet recipe) and ``train`` (a child from scratch) with their default
    recipes and the paper's search space, as a user runs them, on real photos; only the images are small (32 px)."""
    from miil.core.testing import write_image_folder

    write_image_folder(tmp_path / "train", ["a", "b", "c"], per_class=6, seed=0, max_side=96)
    write_image_folder(tmp_path / "val", ["a", "b", "c"], per_class=2, seed=1, max_side=96)
    data = ["--data-dir", str(tmp_path / "train"), "--val-dir", str(tmp_path / "val"), "--img-size", "32"]
    assert main(["hardcore", *command, *data, "--out-dir", str(tmp_path / "run"), *TRAIN]) == 0
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert best["config"]["auto_augment"] == "rand-m9-mstd0.5" and best["config"]["re_prob"] == 0.2
    assert best["config"]["space"] == "hardcorenas" and 0 <= best["metrics"]["top1"] <= 100


def test_run_image_size_is_read_from_the_supernet_and_the_closed_loop_reports(
    tmp_path, tiny_space, image_folders, capsys, monkeypatch
):
    """A supernet trained at 16 px is searched and fine-tuned at 16 px without --img-size (the recipes say 224)."""
    import miil.hardcore.cli as hardcore_cli

    train, _ = image_folders
    space_file = tmp_path / "space.json"
    space_file.write_text(json.dumps(tiny_space.to_dict()))
    run = tmp_path / "heavy"
    argv = ["hardcore", "train-supernet", "--recipe", "heaviest_path_imagenet", "--space", str(space_file)]
    argv += ["--img-size", "16", "--data-dir", str(train), "--out-dir", str(run), "--auto-augment", "none", *TRAIN]
    assert main(argv) == 0
    lut = tmp_path / "lut.json"
    quick = ["--warmup", "0", "--repeats", "1", "--no-progress", "--num-classes", "3", "--clock", "thread_cpu"]
    assert main(["hardcore", "lut", "--space", str(space_file), "--out", str(lut), *quick]) == 0
    table = LatencyTable.load(lut)
    capsys.readouterr()

    sizes = []
    real = hardcore_cli.eval_transform
    monkeypatch.setattr(hardcore_cli, "eval_transform", lambda size: sizes.append(size) or real(size))
    target = 2.0 * table.latency(table.heaviest())  # generous: met on the device even on a busy machine
    arch_file = tmp_path / "arch.json"
    search = ["hardcore", "search", "--supernet", str(run), "--lut", str(lut), "--data-dir", str(train)]
    search += ["--latency-ms", str(target), "--steps", "2", "--batch-size", "4", "--device", "cpu", "--no-progress"]
    assert main([*search, "--out", str(arch_file), "--closed-loop", "--max-rounds", "2"]) == 0
    assert sizes == [16]
    out = capsys.readouterr().out
    assert "image size 16 px" in out and "measured on this device" in out and "meets the target" in out
    found = json.loads(arch_file.read_text())
    loop = found["closed_loop"]
    assert loop["met_on_device"] and loop["measured_ms"] > 0 and loop["rounds"][0]["round"] == 1
    assert found["recipe"]["img_size"] == 16

    sizes.clear()
    assert main([*search, "--out", str(arch_file), "--img-size", "24", "--closed-loop", "false"]) == 0
    assert sizes == [24] and "closed_loop" not in json.loads(arch_file.read_text())  # an explicit size wins

    ft = tmp_path / "ft"
    argv = ["hardcore", "finetune", "--supernet", str(run), "--arch", str(arch_file), "--data-dir", str(train)]
    assert main([*argv, "--out-dir", str(ft), "--auto-augment", "none", *TRAIN]) == 0
    assert json.loads((ft / "best.json").read_text())["run_info"]["img_size"] == 16
