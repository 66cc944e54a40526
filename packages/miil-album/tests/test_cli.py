"""``miil album recipes | train | validate | infer | convert`` on the miniature datasets (CPU, tiny models, 1 epoch).

The miniatures are written in the datasets' real layouts (``miil.album.miniature``); the commands read them with
their defaults, without split or label flags.
"""

import json
import shutil

import pytest
import torch

from miil.album import PETA
from miil.album.data import eval_album_indices
from miil.album.inference import load_album_model
from miil.core.cli import main
from miil.core.testing import write_bad_inputs

from .conftest import CUFED_CLASSES, PEC_CLASSES, CreatesFile
from .test_convert import _original_layout, randomize_batchnorm

TINY = [
    "--model", "test_resnet", "--pretrained", "false", "--img-size", "32", "--album-size", "4",
    "--depth", "1", "--num-heads", "4", "--ffn-dim", "16", "--epochs", "1", "--batch-size", "2",
    "--device", "cpu", "--progress", "false", "--amp", "false", "--ema", "false", "--warmup-epochs", "0",
]  # fmt: skip

pytestmark = pytest.mark.filterwarnings("ignore::miil.core.data.UnreadableFileWarning")


def _run(capsys, *argv, status=0) -> str:
    assert main(list(argv)) == status, capsys.readouterr()
    return capsys.readouterr().out


def test_train_validate_infer_on_the_ml_cufed_layout_with_its_defaults(cufed_root, tmp_path, capsys):
    run = tmp_path / "run"
    out = _run(capsys, "album", "train", "--data-root", str(cufed_root), "--out-dir", str(run), *TINY)
    assert "best mAP" in out and f"plot: miil plot {run}" in out
    best = json.loads((run / "best.json").read_text())
    assert best["run_info"]["classes"] == CUFED_CLASSES and best["run_info"]["data"]["format"] == "ml-cufed"
    assert best["run_info"]["data"]["train_split"].endswith("train_split.txt")  # the miniature's splits, found
    assert best["config"]["num_classes"] == 4 and best["config"]["album_size"] == 4
    assert best["eval_precision"] == "fp32" and best["config"]["eval_tiebreak"] == "top1:max"

    # the metric that picked "best" is what validate reports for it: same albums, batches and precision
    metrics, reports = tmp_path / "metrics.json", tmp_path / "reports.json"
    out = _run(
        capsys, "album", "validate", "--weights", str(run), "--data-root", str(cufed_root),
        "--json", str(metrics), "--output", str(reports), "--progress", "false",
    )  # fmt: skip
    assert "albums 4 | mAP" in out and "spearman (last_layer)" in out  # the 4 test albums; importance at the root
    values = json.loads(metrics.read_text())
    assert values["metrics"]["mAP"] == best["metrics"]["mAP"] and values["metrics"]["top1"] == best["metrics"]["top1"]
    assert values["samples"] == 4 and values["skipped"] == [] and values["precision"] == "fp32"
    assert -1 <= values["metrics"]["spearman_rollout"] <= 1
    written = json.loads(reports.read_text())
    assert len(written) == 4 and all(len(r["images"]) == 4 for r in written)  # K = 4 of 5-8 photos
    photos = sorted(p.name for p in (cufed_root / "images" / written[0]["album"]).iterdir())
    assert written[0]["images"] == [photos[i] for i in eval_album_indices(len(photos), 4)]  # sorted uniform

    everything = _run(capsys, "album", "validate", "--weights", str(run), "--data-root", str(cufed_root),
                      "--val-split", "all", "--progress", "false")  # fmt: skip
    assert "albums 12 | mAP" in everything

    album = cufed_root / "images" / written[0]["album"]
    report = tmp_path / "album.json"
    out = _run(
        capsys, "album", "infer", str(album), "--weights", str(run), "--json", str(report), "--threshold", "0",
        "--progress", "false",
    )  # fmt: skip
    assert "most important photos:" in out and "events:" in out and "spearman vs human" in out  # found at the root
    data = json.loads(report.read_text())
    assert data["samples"] == 1 and data["skipped"] == [] and len(data["albums"]) == 1
    assert sum(data["albums"][0]["importance"]["rollout"]) == pytest.approx(1.0, abs=1e-4)
    assert set(data["albums"][0]["events"]) == set(CUFED_CLASSES)


def test_mean_baseline_on_the_pec_layout(folder_albums, tmp_path, capsys):
    run = tmp_path / "mean"
    _run(
        capsys, "album", "train", "--recipe", "mean-ml-cufed", "--data-format", "pec", "--data-root",
        str(folder_albums), "--out-dir", str(run), *TINY,
    )  # fmt: skip
    loaded = load_album_model(run)
    assert type(loaded.model).__name__ == "MeanOfPredictions" and loaded.classes == PEC_CLASSES
    out = _run(capsys, "album", "validate", "--weights", str(run), "--data-format", "pec", "--data-root",
               str(folder_albums), "--val-split", "all")  # fmt: skip
    assert "albums 9 | mAP" in out
    album = sorted(folder_albums.glob(f"{PEC_CLASSES[0]}/*"))[0]
    out = _run(capsys, "album", "infer", str(album), "--weights", str(run))
    assert "top scores:" in out


def test_train_with_a_backbone_whose_features_come_from_its_head(folder_albums, tmp_path, capsys):
    """mobilenetv3_small_050 pools 288 channels and widens them to 1024 in its head (head_hidden_size): the album
    encoder must read the width from what the backbone returns (it used to fail at the first step)."""
    run = tmp_path / "mnv3"
    tiny = [a if a != "test_resnet" else "mobilenetv3_small_050" for a in TINY]
    _run(capsys, "album", "train", "--data-format", "pec", "--data-root", str(folder_albums), "--out-dir", str(run),
         *tiny)  # fmt: skip
    loaded = load_album_model(run)
    assert loaded.model.backbone.num_features == 1024 and loaded.model.head.in_features == 1024


def test_recipes_verb_lists_kebab_case_rows(capsys):
    out = _run(capsys, "album", "recipes")
    assert {line.split()[0] for line in out.splitlines()} == {
        "peta-ml-cufed", "peta-cufed", "peta-pec", "mean-ml-cufed", "peta-32-release",
    }  # fmt: skip
    out = _run(capsys, "album", "recipes", "peta-pec")
    assert "--num-classes" in out and "14" in out and "--eval-tiebreak" in out


def test_recipe_and_data_mismatches_are_one_line_errors(cufed_root, folder_albums, tmp_path, capsys):
    cases = [
        (["--data-root", str(folder_albums)], "--data-format pec or folder"),
        (["--data-format", "cufed", "--data-root", str(cufed_root)], "--data-format ml-cufed"),
        (["--data-root", str(cufed_root), "--train-labels", str(tmp_path / "no.json")], "--train-labels"),
        (["--data-format", "pec", "--data-root", str(folder_albums), "--train-split", "nope"], "--train-split"),
    ]
    for flags, hint in cases:
        assert main(["album", "train", *flags, "--out-dir", str(tmp_path / "x"), *TINY]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("miil album train: error:") and hint in err[0], err
    classes = tmp_path / "classes.txt"
    classes.write_text("Show\n")
    assert main(["album", "train", "--data-root", str(cufed_root), "--classes", str(classes), *TINY]) == 2
    assert "not in --classes" in capsys.readouterr().err


def _album_with_bad_photos(root, album):
    """The bad-input set in one album folder: truncated, empty, wrong type, a folder and a dangling link."""
    folder = root / "images" / album
    good = next(folder.iterdir())
    bad = write_bad_inputs(folder, good=good)
    bad["missing"].symlink_to(folder / "gone.jpg")
    return {str(path) for path in bad.values()}


def test_bad_photos_are_skipped_counted_and_reported(cufed_root, tmp_path, capsys):
    train_album = (cufed_root / "train_split.txt").read_text().split()[0]
    test_album = (cufed_root / "test_split.txt").read_text().split()[0]
    bad_train = _album_with_bad_photos(cufed_root, train_album)
    bad_test = _album_with_bad_photos(cufed_root, test_album)
    everything = [*TINY, "--album-size", "32"]  # every photo of an album is read
    run = tmp_path / "run"
    out = _run(capsys, "album", "train", "--data-root", str(cufed_root), "--out-dir", str(run), *everything,
               status=3)  # fmt: skip
    assert "skipped 10 unreadable input(s)" in out
    listed = {s["file"] for s in json.loads((run / "skipped.json").read_text())}
    assert listed == bad_train | bad_test

    report = tmp_path / "val.json"
    out = _run(capsys, "album", "validate", "--weights", str(run), "--data-root", str(cufed_root), "--json",
               str(report), status=3)  # fmt: skip
    data = json.loads(report.read_text())
    assert data["samples"] == 4 and {s["file"] for s in data["skipped"]} == bad_test  # the album still counts
    assert {s["reason"].split(" (")[0] for s in data["skipped"]} >= {"empty file", "a folder, not a file"}
    assert any(s["reason"].startswith("truncated") for s in data["skipped"])
    strict = ["album", "validate", "--weights", str(run), "--data-root", str(cufed_root), "--strict", "--progress", "0"]
    assert main(strict) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("miil album validate: error:"), err

    albums = [str(cufed_root / "images" / test_album), str(tmp_path / "no-such-album"), str(report)]
    out = _run(capsys, "album", "infer", *albums, "--weights", str(run), "--json", str(report), status=3)
    data = json.loads(report.read_text())
    reasons = {s["file"]: s["reason"] for s in data["skipped"]}
    assert data["samples"] == 1 and set(reasons) == bad_test | set(albums[1:])
    assert reasons[albums[1]] == "missing" and reasons[albums[2]] == "a file, not an album folder"
    assert "skipped 7 unreadable input(s)" in out
    assert main(["album", "infer", *albums, "--weights", str(run), "--strict", "--progress", "false"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("miil album infer: error:"), err


def test_code_carrying_pickles_are_refused_by_every_weights_option(cufed_root, tmp_path, capsys):
    target = tmp_path / "created-by-payload"
    evil = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(2)}, "extra": CreatesFile(target)}, evil)
    album = next((cufed_root / "images").iterdir())
    commands = [
        ["train", "--data-root", str(cufed_root), "--init-checkpoint", str(evil), "--out-dir", str(tmp_path / "r"),
         *TINY],
        ["validate", "--weights", str(evil), "--data-root", str(cufed_root)],
        ["infer", str(album), "--weights", str(evil)],
        ["convert", str(evil), str(tmp_path / "out.safetensors")],
    ]  # fmt: skip
    for argv in commands:
        assert main(["album", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert "evil.pth" in err and "arbitrary" in err, err
        assert not target.exists()


def test_convert_original_checkpoint(tmp_path, capsys):
    torch.manual_seed(0)
    tiny = ["--depth", "1", "--num-heads", "4", "--ffn-dim", "16", "--album-size", "6"]
    kwargs = '{"width_factor": 0.125}'
    reference = randomize_batchnorm(PETA(
        "tresnet_m", backbone_kwargs={"width_factor": 0.125}, num_classes=2, depth=1, num_heads=4, ffn_dim=16,
        pos_embed=True, max_images=6,
    )).eval()  # fmt: skip
    source = tmp_path / "peta_tiny.pth"
    torch.save({"model": _original_layout(reference), "idx_to_class": {0: "Show", 1: "Zoo"}}, source)
    target = tmp_path / "peta_tiny.safetensors"
    out = _run(capsys, "album", "convert", str(source), str(target), "--model-kwargs", kwargs, *tiny)
    assert "2 events" in out
    loaded = load_album_model(target)
    assert loaded.classes == ["Show", "Zoo"] and loaded.recipe.pos_embed and loaded.precision == "fp32"
    images = torch.rand(1, 3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.model(images), reference(images))
    assert main(["album", "convert", str(source), str(tmp_path / "x.pt"), "--model-kwargs", kwargs, *tiny]) == 2
    assert "safetensors" in capsys.readouterr().err


def test_validate_reads_a_copied_run_folder(cufed_root, tmp_path, capsys):
    """--weights takes the run folder or its best.safetensors (with best.json beside it)."""
    run = tmp_path / "run"
    _run(capsys, "album", "train", "--data-root", str(cufed_root), "--out-dir", str(run), *TINY)
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    a = _run(capsys, "album", "validate", "--weights", str(copy), "--data-root", str(cufed_root))
    b = _run(capsys, "album", "validate", "--weights", str(copy / "best.safetensors"), "--data-root", str(cufed_root))
    assert a == b and "albums 4 | mAP" in a
