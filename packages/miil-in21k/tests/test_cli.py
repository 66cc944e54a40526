"""``miil in21k train | validate | infer | tree`` on tiny real data (digit images in class folders, tiny timm model)."""

import json

import pytest

from miil.core.cli import main as miil_main
from miil.core.data import digits_pil_images
from miil.in21k import SemanticTree, load_tree

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
        for c, wnid in enumerate(CLASSES):
            folder = root / "data" / split / wnid
            folder.mkdir(parents=True)
            for i in range(per_class):
                images[k][0].save(folder / f"{wnid}_{i}.png")
                k += 1
            if c == 6:
                (folder / "broken.png").write_bytes(b"not a png")  # unreadable: skipped and counted
    return root


pytestmark = pytest.mark.filterwarnings("ignore::miil.core.data.UnreadableFileWarning")


def _run(argv, capsys):
    code = miil_main(argv)
    out = capsys.readouterr().out
    return code, out


def test_train_validate_infer(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    code, out = _run(
        ["in21k", "train", "--recipe", "semantic_softmax_tresnet_m", "--data-dir", str(dataset / "data"),
         "--tree", str(dataset / "tree.json.gz"), "--out-dir", str(run), *TINY],
        capsys,
    )  # fmt: skip
    assert code == 0, out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["best_epoch"] == 0 and 0.0 <= result["best_metric"] <= 100.0
    best = json.loads((run / "best.json").read_text())
    assert set(best["metrics"]) >= {"semantic_top1", "top1", "level0_top1", "level2_top1"}
    assert best["run_info"]["levels"] == [0, 1, 2] and best["run_info"]["recipe"] == "semantic_softmax_tresnet_m"
    assert best["config"]["opt"] == "adam" and best["config"]["pct_start"] == 0.1
    assert load_tree(run / "tree.json.gz").class_list == CLASSES

    code, out = _run(
        ["in21k", "validate", "--run-dir", str(run), "--data-dir", str(dataset / "data"), "--device", "cpu"], capsys
    )
    assert code == 0
    metrics = json.loads(out.strip().splitlines()[-1])
    assert metrics["images"] == 15 and 0.0 <= metrics["semantic_top1"] <= 100.0

    image = dataset / "data" / "imagenet21k_val" / CLASSES[5] / f"{CLASSES[5]}_0.png"
    code, out = _run(["in21k", "infer", str(image), "--run-dir", str(run), "--threshold", "0.0"], capsys)
    assert code == 0
    row = json.loads(out.strip().splitlines()[-1])
    assert row["image"] == str(image)
    assert [label["level"] for label in row["labels"]] == [0, 1, 2]  # threshold 0: one label per trained level
    assert {label["wnid"] for label in row["labels"]} <= set(CLASSES)

    code, out = _run(
        ["in21k", "validate", "--model", "test_resnet", "--checkpoint", str(run / "best.safetensors"), "--tree",
         str(dataset / "tree.json.gz"), "--img-size", "32", "--data-dir", str(dataset / "data")],
        capsys,
    )  # fmt: skip
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["semantic_top1"] == metrics["semantic_top1"]

    # semantic KD: the first run's weights as the teacher, through the same CLI
    code, out = _run(
        ["in21k", "train", "--recipe", "semantic_kd_tresnet_m", "--data-dir", str(dataset / "data"),
         "--tree", str(dataset / "tree.json.gz"), "--out-dir", str(tmp_path / "kd"), "--teacher", "test_resnet",
         "--teacher-checkpoint", str(run / "best.safetensors"), "--kd-reduction", "batchmean", *TINY],
        capsys,
    )  # fmt: skip
    assert code == 0, out
    assert json.loads((tmp_path / "kd" / "config.json").read_text())["config"]["teacher"] == "test_resnet"


def test_transfer_recipe_and_errors(dataset, tmp_path, capsys):
    data = tmp_path / "cifar"
    data.mkdir()
    (data / "train").symlink_to(dataset / "data" / "imagenet21k_train")
    (data / "val").symlink_to(dataset / "data" / "imagenet21k_val")
    code, out = _run(
        ["in21k", "train", "--recipe", "transfer_cifar100_mixer_b16_miil_in21k", "--data-dir", str(data),
         "--out-dir", str(tmp_path / "ft"), "--ema", "false", *TINY],
        capsys,
    )  # fmt: skip
    assert code == 0, out
    best = json.loads((tmp_path / "ft" / "best.json").read_text())
    assert set(best["metrics"]) >= {"top1", "top5"} and best["run_info"]["classes"] == sorted(CLASSES)
    code, out = _run(["in21k", "validate", "--run-dir", str(tmp_path / "ft"), "--val-dir", str(data / "val")], capsys)
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["images"] == 15
    image = data / "val" / CLASSES[0] / f"{CLASSES[0]}_0.png"
    code, out = _run(["in21k", "infer", str(image), "--run-dir", str(tmp_path / "ft"), "--top-k", "3"], capsys)
    labels = json.loads(out.strip().splitlines()[-1])["labels"]
    assert code == 0 and len(labels) == 3 and {x["class"] for x in labels} <= set(CLASSES)

    assert miil_main(["in21k", "train", "--recipe", "semantic_softmax_tresnet_m", "--reprob", "0.1"]) != 0
    capsys.readouterr()
    bad = tmp_path / "bad" / "imagenet21k_train" / "cat"
    bad.mkdir(parents=True)
    (bad / "x.png").write_bytes(b"")
    code = miil_main(["in21k", "train", "--data-dir", str(tmp_path / "bad"), *TINY])
    assert code == 2  # "cat" is not a fall11 class, and the error says so
    assert "not classes of the tree" in capsys.readouterr().err


def test_tree_commands(tmp_path, capsys, wordnet_dir):
    code, out = _run(["in21k", "tree", "show", "Samoyed", "n01858441"], capsys)
    assert code == 0
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert rows[0]["ancestor_names"] == ["spitz", "dog", "domestic_animal", "animal"]
    assert rows[1]["name"] == "swan" and "black_swan" in rows[1]["children_names"]
    code, out = _run(["in21k", "tree", "stats", "--tree", "winter21"], capsys)
    assert code == 0 and "10450" in out and "20.000" in out
    (tmp_path / "ids.txt").write_text("n02111889\nn02084071 n00015388\n")
    code, out = _run(
        ["in21k", "tree", "build", "--classes", str(tmp_path / "ids.txt"), "--wordnet", str(wordnet_dir), "--sort",
         "--out", str(tmp_path / "t.pth")],
        capsys,
    )  # fmt: skip
    assert code == 0
    built = load_tree(tmp_path / "t.pth")
    assert built.class_list == ["n00015388", "n02084071", "n02111889"] and built.parents == [-1, 0, 1]
    code, _ = _run(["in21k", "tree", "convert", "winter21", str(tmp_path / "w21.pth")], capsys)
    assert code == 0 and len(load_tree(tmp_path / "w21.pth")) == 10450
    assert miil_main(["in21k", "tree", "show", "no_such_class"]) == 2
