"""``miil in21k`` verbs on tiny real data (digit images in class folders, tiny timm model), the miniature release
through ``preprocess`` and ``train`` with their defaults, the bad-input contract and code-carrying pickles."""

import json
import shutil

import pytest
import torch

from miil.core.cli import main as miil_main
from miil.core.data import digits_pil_images
from miil.core.testing import write_bad_inputs
from miil.in21k import SemanticTree, load_tree
from miil.in21k.miniature import MINIATURE_CLASSES, make_imagenet21k

from .conftest import CreatesFile

#        0 animal   1 bird   2 dog   3 swan   4 spitz   5 Samoyed   6 plant
CLASSES = ["n00015388", "n01503061", "n02084071", "n01858441", "n02111626", "n02111889", "n00017222"]
PARENTS = [-1, 0, 0, 1, 2, 4, -1]
TINY = ["--model", "test_resnet", "--pretrained", "false", "--img-size", "32", "--amp", "false", "--device", "cpu",
        "--num-workers", "0", "--progress", "false", "--epochs", "1", "--batch-size", "4"]  # fmt: skip


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("in21k")
    tree = SemanticTree(CLASSES, PARENTS, names=["animal", "bird", "dog", "swan", "spitz", "Samoyed", "plant"])
    tree.save(root / "tree.json.gz")
    images = digits_pil_images("train", image_size=16, channels=3)
    k = 0
    for split, per_class in (("imagenet21k_train", 3), ("imagenet21k_val", 2)):
        for wnid in CLASSES:
            folder = root / "data" / split / wnid
            folder.mkdir(parents=True)
            for i in range(per_class):
                images[k][0].save(folder / f"{wnid}_{i}.png")
                k += 1
    return root


pytestmark = pytest.mark.filterwarnings("ignore::miil.core.data.UnreadableFileWarning")


def _run(argv, capsys, status=0):
    code = miil_main(argv)
    captured = capsys.readouterr()
    assert code == status, captured.out[-2000:] + captured.err[-2000:]
    return captured.out


def _one_line_error(capsys, prog):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"miil in21k {prog}: error:"), err
    return err[0]


def test_train_validate_infer_convert(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    data, tree = str(dataset / "data"), str(dataset / "tree.json.gz")
    out = _run(["in21k", "train", "--data-root", data, "--tree", tree, "--out-dir", str(run), *TINY], capsys)
    assert "best semantic_top1" in out and f"plot: miil plot {run}" in out
    best = json.loads((run / "best.json").read_text())
    assert set(best["metrics"]) >= {"semantic_top1", "top1", "level0_top1", "level2_top1"}
    assert best["run_info"]["levels"] == [0, 1, 2] and best["run_info"]["recipe"] == "semantic-softmax-tresnet-m"
    assert best["config"]["opt"] == "adam" and best["config"]["pct_start"] == 0.1
    assert (best["config"]["div_factor"], best["config"]["cycle_momentum"]) == (20.0, False)
    assert load_tree(run / "tree.json.gz").class_list == CLASSES

    report = tmp_path / "val.json"
    out = _run(["in21k", "validate", "--weights", str(run), "--data-root", data, "--json", str(report)], capsys)
    assert out.startswith("images 14 | semantic_top1")
    values = json.loads(report.read_text())
    assert values["samples"] == 14 and values["skipped"] == [] and values["precision"] == "fp32"
    for key in ("semantic_top1", "top1", "level0_top1", "level1_top1", "level2_top1"):
        assert values["metrics"][key] == best["metrics"][key], key  # what picked "best" is what validate reports

    image = dataset / "data" / "imagenet21k_val" / CLASSES[5] / f"{CLASSES[5]}_0.png"
    predictions = tmp_path / "pred.json"
    out = _run(["in21k", "infer", str(image), "--weights", str(run), "--threshold", "0.0", "--json",
                str(predictions)], capsys)  # fmt: skip
    assert out.startswith(f"{image}: ")
    row = json.loads(predictions.read_text())["predictions"][0]
    assert row["image"] == str(image)
    assert [label["level"] for label in row["labels"]] == [0, 1, 2]  # threshold 0: one label per trained level
    assert {label["wnid"] for label in row["labels"]} <= set(CLASSES)

    # the weights file alone, as a released checkpoint: --model names the architecture
    out = _run(["in21k", "validate", "--weights", str(run / "best.safetensors"), "--data-root", data], capsys)
    assert out.split(" | ")[1] == f"semantic_top1 {best['metrics']['semantic_top1']:.2f}"  # sidecar best.json
    plain = tmp_path / "plain.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in _weights(run).items()}}, plain)  # DDP-saved
    out = _run(["in21k", "validate", "--weights", str(plain), "--model", "test_resnet", "--tree", tree,
                "--img-size", "32", "--data-root", data], capsys)  # fmt: skip
    assert out.split(" | ")[1] == f"semantic_top1 {best['metrics']['semantic_top1']:.2f}"
    converted = tmp_path / "converted.safetensors"
    out = _run(["in21k", "convert", str(plain), str(converted), "--model", "test_resnet", "--tree", tree], capsys)
    assert "7 classes" in out and converted.with_suffix(".json").is_file()
    out = _run(["in21k", "validate", "--weights", str(converted), "--img-size", "32", "--data-root", data], capsys)
    assert out.split(" | ")[1] == f"semantic_top1 {best['metrics']['semantic_top1']:.2f}"

    # semantic KD: the first run's weights as the teacher, through the same CLI
    out = _run(
        ["in21k", "train", "--recipe", "semantic-kd-tresnet-m", "--data-root", data, "--tree", tree,
         "--out-dir", str(tmp_path / "kd"), "--teacher", "test_resnet", "--teacher-checkpoint",
         str(run / "best.safetensors"), "--kd-reduction", "batchmean", *TINY],
        capsys,
    )  # fmt: skip
    assert json.loads((tmp_path / "kd" / "config.json").read_text())["config"]["teacher"] == "test_resnet"


def _weights(run):
    from miil.core.io import load_checkpoint

    return load_checkpoint(run / "best.safetensors")


def test_transfer_recipe_and_recipe_data_mismatches(dataset, tmp_path, capsys):
    data = tmp_path / "cifar"
    data.mkdir()
    (data / "train").symlink_to(dataset / "data" / "imagenet21k_train")
    (data / "val").symlink_to(dataset / "data" / "imagenet21k_val")
    _run(
        ["in21k", "train", "--recipe", "transfer-cifar100-mixer-b16-miil-in21k", "--data-root", str(data),
         "--out-dir", str(tmp_path / "ft"), "--ema", "false", *TINY],
        capsys,
    )  # fmt: skip
    best = json.loads((tmp_path / "ft" / "best.json").read_text())
    assert set(best["metrics"]) >= {"top1", "top5"} and best["run_info"]["classes"] == sorted(CLASSES)
    report = tmp_path / "ft.json"
    _run(["in21k", "validate", "--weights", str(tmp_path / "ft"), "--data-format", "folder", "--data-root",
          str(data), "--json", str(report)], capsys)  # fmt: skip
    values = json.loads(report.read_text())
    assert values["samples"] == 14 and values["metrics"]["top1"] == best["metrics"]["top1"]
    image = data / "val" / CLASSES[0] / f"{CLASSES[0]}_0.png"
    out = _run(["in21k", "infer", str(image), "--weights", str(tmp_path / "ft"), "--top-k", "3"], capsys)
    assert out.count(",") == 2 and all(
        name in CLASSES for name in [x.split()[0] for x in out.split(": ")[1].split(", ")]
    )

    assert miil_main(["in21k", "train", "--recipe", "semantic-softmax-tresnet-m", "--reprob", "0.1"]) == 2
    assert "does not apply to recipe" in _one_line_error(capsys, "train")
    bad = tmp_path / "bad" / "imagenet21k_train" / "cat"
    bad.mkdir(parents=True)
    (bad / "x.png").write_bytes(b"")
    assert miil_main(["in21k", "train", "--data-root", str(tmp_path / "bad"), *TINY]) == 2
    line = _one_line_error(capsys, "train")  # "cat" is not a fall11 class: pick the tree, or a transfer recipe
    assert "not classes of the tree" in line and "--tree" in line and "--recipe transfer-" in line
    assert miil_main(["in21k", "train", "--data-root", str(tmp_path / "nowhere"), *TINY]) == 2
    assert "--data-root" in _one_line_error(capsys, "train")
    assert miil_main(["in21k", "train", "--data-root", str(data), "--train-split", "nope", *TINY]) == 2
    assert "--train-split nope" in _one_line_error(capsys, "train")


def test_preprocess_the_miniature_then_train_with_the_defaults(tmp_path, capsys):
    """The release layout (miil.in21k.miniature) -> preprocess -> train and validate, with no layout flags."""
    release = make_imagenet21k(tmp_path / "release")
    processed = tmp_path / "in21k_p"
    out = _run(["in21k", "preprocess", str(release), str(processed), "--small-class-threshold", "4",
                "--val-per-class", "2", "--size", "32", "--progress", "false"], capsys)  # fmt: skip
    assert "kept 10 classes (1 dropped), train 100, val 20 images" in out
    run = tmp_path / "run"
    _run(["in21k", "train", "--data-root", str(processed), "--out-dir", str(run), *TINY], capsys)  # tree: fall11
    best = json.loads((run / "best.json").read_text())
    assert best["run_info"]["tree"] == "fall11" and best["run_info"]["num_classes"] == 11221
    assert len(load_tree(run / "tree.json.gz")) == 11221
    report = tmp_path / "val.json"
    _run(["in21k", "validate", "--weights", str(run), "--data-root", str(processed), "--json", str(report)], capsys)
    values = json.loads(report.read_text())
    assert values["samples"] == 20 and values["metrics"]["semantic_top1"] == best["metrics"]["semantic_top1"]
    assert set(MINIATURE_CLASSES) == {p.name for p in (processed / "imagenet21k_val").iterdir()}


def test_bad_images_are_skipped_counted_and_reported(dataset, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(dataset / "data", data)
    good = next((data / "imagenet21k_train" / CLASSES[0]).iterdir())
    bad = {}
    for split in ("imagenet21k_train", "imagenet21k_val"):
        folder = data / split / CLASSES[6]
        files = write_bad_inputs(folder, good=good)
        files["missing"].symlink_to(folder / "gone.png")  # listed by the folder scan, then not found
        bad[split] = {str(p) for k, p in files.items() if k != "folder"}  # a folder inside a class folder is walked
    run = tmp_path / "run"
    out = _run(["in21k", "train", "--data-root", str(data), "--tree", str(dataset / "tree.json.gz"), "--out-dir",
                str(run), *TINY], capsys, status=3)  # fmt: skip
    assert "skipped 8 unreadable input(s)" in out
    assert {s["file"] for s in json.loads((run / "skipped.json").read_text())} == bad["imagenet21k_train"] | bad[
        "imagenet21k_val"
    ]
    report = tmp_path / "val.json"
    _run(["in21k", "validate", "--weights", str(run), "--data-root", str(data), "--json", str(report)], capsys, 3)
    values = json.loads(report.read_text())
    assert values["samples"] == 14 and {s["file"] for s in values["skipped"]} == bad["imagenet21k_val"]
    reasons = {s["reason"].split(" (")[0] for s in values["skipped"]}
    assert {"empty file", "missing", "not a readable image file"} <= reasons
    assert any(r.startswith("truncated") for r in reasons)
    strict = ["in21k", "validate", "--weights", str(run), "--data-root", str(data), "--strict", "--progress", "0"]
    assert miil_main(strict) == 2
    _one_line_error(capsys, "validate")

    folder = data / "imagenet21k_val" / CLASSES[6]
    images = [str(folder / f"{CLASSES[6]}_0.png"), *sorted(bad["imagenet21k_val"]), str(folder / "folder.png")]
    images.append(str(tmp_path / "no-such.png"))
    out = _run(["in21k", "infer", *images, "--weights", str(run), "--json", str(report)], capsys, status=3)
    values = json.loads(report.read_text())
    reasons = {s["file"]: s["reason"] for s in values["skipped"]}
    assert values["samples"] == 1 and len(values["predictions"]) == 1 and set(reasons) == set(images[1:])
    assert reasons[str(folder / "folder.png")] == "a folder, not a file" and reasons[images[-1]] == "missing"
    assert "skipped 6 unreadable input(s)" in out
    assert miil_main(["in21k", "infer", *images, "--weights", str(run), "--strict", "--progress", "false"]) == 2
    _one_line_error(capsys, "infer")


def test_code_carrying_pickles_are_refused_by_every_file_option(dataset, tmp_path, capsys):
    target = tmp_path / "created-by-payload"
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "extra": CreatesFile(target)}, evil)
    data, tree, image = (
        str(dataset / "data"),
        str(dataset / "tree.json.gz"),
        str(next((dataset / "data").rglob("*.png"))),
    )
    out = ["--out-dir", str(tmp_path / "r")]
    commands = [
        ["train", "--data-root", data, "--tree", str(evil), *out, *TINY],
        ["train", "--data-root", data, "--tree", tree, "--init-checkpoint", str(evil), *out, *TINY],
        ["train", "--recipe", "semantic-kd-tresnet-m", "--data-root", data, "--tree", tree, "--teacher", "test_resnet",
         "--teacher-checkpoint", str(evil), *out, *TINY],
        ["validate", "--weights", str(evil), "--model", "test_resnet", "--tree", tree, "--data-root", data],
        ["validate", "--model", "test_resnet", "--pretrained", "--tree", str(evil), "--data-root", data],
        ["infer", image, "--weights", str(evil), "--model", "test_resnet", "--tree", tree],
        ["convert", str(evil), str(tmp_path / "out.safetensors"), "--model", "test_resnet", "--tree", tree],
        ["tree", "show", "dog", "--tree", str(evil)],
        ["tree", "stats", "--tree", str(evil)],
        ["tree", "convert", str(evil), str(tmp_path / "t.json")],
    ]  # fmt: skip
    pickled = tmp_path / "evil.pkl"
    pickled.write_bytes(__import__("pickle").dumps({"class_list": [CreatesFile(target)]}))
    commands.append(["tree", "stats", "--tree", str(pickled)])
    for argv in commands:
        assert miil_main(["in21k", *argv]) == 2, argv
        line = _one_line_error(capsys, argv[0] if argv[0] != "tree" else f"tree {argv[1]}")
        assert "evil." in line, line
        assert not target.exists()


def test_recipes_and_tree_commands(tmp_path, capsys, wordnet_dir):
    out = _run(["in21k", "recipes"], capsys)
    assert "semantic-softmax-tresnet-m" in out and "transfer-cifar100-mixer-b16-miil-in21k" in out
    out = _run(["in21k", "recipes", "semantic-softmax-tresnet-m"], capsys)
    assert "--cutout" in out and "--div-factor" in out and "20.0" in out
    out = _run(["in21k", "tree", "show", "Samoyed", "n01858441"], capsys)
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert rows[0]["ancestor_names"] == ["spitz", "dog", "domestic_animal", "animal"]
    assert rows[1]["name"] == "swan" and "black_swan" in rows[1]["children_names"]
    out = _run(["in21k", "tree", "stats", "--tree", "winter21"], capsys)
    assert "10450" in out and "20.000" in out
    (tmp_path / "ids.txt").write_text("n02111889\nn02084071 n00015388\n")
    _run(
        ["in21k", "tree", "build", "--classes", str(tmp_path / "ids.txt"), "--wordnet", str(wordnet_dir), "--sort",
         "--output", str(tmp_path / "t.pth")],
        capsys,
    )  # fmt: skip
    built = load_tree(tmp_path / "t.pth")
    assert built.class_list == ["n00015388", "n02084071", "n02111889"] and built.parents == [-1, 0, 1]
    _run(["in21k", "tree", "convert", "winter21", str(tmp_path / "w21.pth")], capsys)
    assert len(load_tree(tmp_path / "w21.pth")) == 10450
    assert miil_main(["in21k", "tree", "show", "no_such_class"]) == 2
    _one_line_error(capsys, "tree show")
