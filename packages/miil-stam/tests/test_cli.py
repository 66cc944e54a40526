"""``miil stam recipes | train | validate | infer | convert`` in the miil dialect, on tiny models and short encoded
clips (the miniature Kinetics-400 and class folders of moving digits), on the CPU.

Covered: the metric that picks the best weights is what ``validate`` reports; the CLI defaults read the miniature
Kinetics-400; the bad-input contract (truncated, empty, wrong type, missing, a folder where a file belongs) in train,
validate and infer; ``--strict``; valid JSON with fewer than five classes; label paths that leave the data root;
pickles that would run code when loaded.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from miil.core.cli import main
from miil.core.testing import write_bad_inputs
from miil.stam import RECIPES, create_stam, load_trained, load_weights, to_original_layout
from miil.stam.miniature import KINETICS_MOTION_LABELS, make_kinetics400

SPATIAL = json.dumps({"img_size": 32, "patch_size": 16, "embed_dim": 32, "depth": 1, "num_heads": 2})
BAD_REASONS = {
    "truncated": "truncated (the 'mdat' box",
    "empty": "empty file",
    "wrong_type": "not a readable video file",
    "missing": "missing",
    "folder": "a folder, not a file",
}


def _strict_json(path: Path):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def _error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("miil stam")]


@pytest.fixture(scope="module")
def k400(tmp_path_factory) -> Path:
    """The miniature Kinetics-400 as ``make_kinetics400`` writes it (4 labels, 2 train / 1 validation clip each)."""
    return make_kinetics400(tmp_path_factory.mktemp("k400") / "k400", train_per_class=2, val_per_class=2)


@pytest.fixture(scope="module")
def k400_run(k400, tmp_path_factory, tiny_cli_args) -> Path:
    """A two-epoch tiny STAM-8 run on the miniature Kinetics-400, with nothing but ``--data-root`` for the data."""
    run = tmp_path_factory.mktemp("runs") / "k400"
    args = ["stam", "train", "--recipe", "stam-8", "--data-root", str(k400), "--out-dir", str(run)]
    assert main([*args, "--epochs", "2", "--sampling", "segment", "--train-sampling", "segment", *tiny_cli_args]) == 0
    return run


def test_train_writes_a_run(trained_run, motion_classes):
    meta = json.loads((trained_run / "best.json").read_text())
    assert meta["run_info"]["classes"] == sorted(motion_classes)
    assert meta["run_info"]["model"]["num_frames"] == 8 and meta["config"]["frame_rate"] == 0.8
    assert meta["config"]["num_classes"] == 0 and meta["run_info"]["model"]["num_classes"] == 4
    history = [json.loads(x) for x in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == 1 and "top1" in history[0]["val"] and "top5" not in history[0]["val"]  # 4 classes
    model, recipe, classes = load_trained(trained_run)
    assert model.num_frames == 8 and recipe.frame_rate == 0.8 and classes == sorted(motion_classes)


def test_kinetics_defaults_and_validate_reports_the_metric_that_chose_the_best_weights(k400_run, tmp_path, capsys):
    best = json.loads((k400_run / "best.json").read_text())
    assert best["run_info"]["classes"] == sorted(KINETICS_MOTION_LABELS) and best["eval_precision"] == "fp32"
    assert best["run_info"]["data"]["data_format"] == "kinetics"
    report = tmp_path / "validate.json"
    capsys.readouterr()
    assert main(["stam", "validate", "--weights", str(k400_run), "--device", "cpu", "--json", str(report)]) == 0
    got = _strict_json(report)  # valid JSON: no NaN for the top-5 of 4 classes
    assert got["samples"] == 8 and got["skipped"] == [] and "top5" not in got["metrics"]
    assert got["metrics"]["top1"] == best["metrics"]["top1"]  # exactly: same data, meter, batches, precision
    assert math.isclose(got["metrics"]["loss"], best["metrics"]["loss"], rel_tol=1e-6)
    assert "top1" in capsys.readouterr().out


def test_bad_inputs_in_validate_train_and_infer(k400, k400_run, tmp_path, tiny_cli_args, capsys):
    root = tmp_path / "k400-bad"
    shutil.copytree(k400, root)
    good = sorted((root / "train").glob("*.mp4"))[0]
    bad = write_bad_inputs(tmp_path / "bad", good=good)
    placed = {}
    for split, csv_name in (("val", "validate.csv"), ("train", "train.csv")):
        rows = (root / "annotations" / csv_name).read_text().splitlines()[1:]
        for kind, row in zip(BAD_REASONS, rows[1:]):  # keep the first (the .mkv of validation) readable
            label, ytid, start, end, _ = row.split(",")
            target = next((root / split).glob(f"{ytid}_*"))
            target.unlink()
            if kind == "folder":
                target.mkdir()
            elif kind != "missing":
                shutil.copy(bad[kind], target)
            placed[(split, kind)] = target
    report = tmp_path / "v.json"
    argv = ["stam", "validate", "--weights", str(k400_run), "--data-root", str(root), "--device", "cpu"]
    capsys.readouterr()
    assert main([*argv, "--json", str(report), "--progress", "false"]) == 3
    got = _strict_json(report)
    assert got["samples"] == 3 and got["skipped_count"] == 5  # skipped videos are not samples
    reasons = {Path(s["file"]).stem: s["reason"] for s in got["skipped"]}  # a missing clip: where it would be
    for kind in BAD_REASONS:
        assert reasons[placed[("val", kind)].stem].startswith(BAD_REASONS[kind]), (kind, reasons)
    assert "skipped 5 unreadable input(s)" in capsys.readouterr().out
    assert main([*argv, "--strict", "--progress", "false"]) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1 and "error: cannot read video file" in lines[0]

    run = tmp_path / "run-bad"
    train = ["stam", "train", "--recipe", "stam-8", "--data-root", str(root), "--out-dir", str(run), "--epochs", "1"]
    assert main([*train, *tiny_cli_args]) == 3
    skipped = {Path(s["file"]).stem for s in json.loads((run / "skipped.json").read_text())}
    assert skipped == {p.stem for p in placed.values()}
    out = capsys.readouterr().out
    assert "skipped 10 unreadable input(s)" in out and f"plot: miil plot {run}" in out
    assert main([*train[:-4], "--out-dir", str(tmp_path / "strict"), "--strict", *tiny_cli_args]) == 2
    assert len(_error_lines(capsys)) == 1

    report = tmp_path / "i.json"
    inputs = [str(tmp_path / "bad"), str(bad["missing"]), str(good)]
    assert main(["stam", "infer", *inputs, "--weights", str(k400_run), "--device", "cpu", "--json", str(report)]) == 3
    got = _strict_json(report)
    assert [p["video"] for p in got["predictions"]] == [str(good)]  # the good one is predicted all the same
    reasons = {Path(s["file"]).name: s["reason"] for s in got["skipped"]}
    assert len(reasons) == 5
    for kind in BAD_REASONS:
        assert reasons[bad[kind].name].startswith(BAD_REASONS[kind]), (kind, reasons)
    assert main(["stam", "infer", *inputs, "--weights", str(k400_run), "--device", "cpu", "--strict"]) == 2


def test_infer_files_and_folders(trained_run, motion_root, motion_classes, capsys):
    one = sorted(motion_root.rglob("*.mp4"))[0]
    assert main(["stam", "infer", str(one), "--weights", str(trained_run), "--top-k", "2", "--device", "cpu"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{one}: ")
    shown = [part.rsplit(" ", 1)[0] for part in line.removeprefix(f"{one}: ").split(", ")]
    assert len(shown) == 2 and set(shown) <= set(motion_classes)
    report = motion_root.parent / "infer.json"
    code = main(["stam", "infer", str(motion_root), "--weights", str(trained_run), "--json", str(report),
                 "--device", "cpu", "--sampling", "segment", "--num-frames", "4"])  # fmt: skip
    assert code == 0
    results = _strict_json(report)["predictions"]
    assert len(results) == 12
    for entry in results:
        probs = [t["prob"] for t in entry["top"]]
        assert len(probs) == 4 and probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1, abs=1e-4)


def test_label_paths_and_recipe_against_data_are_checked_before_training(motion_root, tmp_path, tiny_cli_args, capsys):
    table = tmp_path / "train.csv"
    clip = sorted(motion_root.rglob("*.mp4"))[0]
    table.write_text(f"path,label\n{clip.relative_to(motion_root)},a\n../../../etc/hosts.mp4,b\n")
    base = ["stam", "train", "--data-format", "csv", "--data-root", str(motion_root), "--train-labels", str(table)]
    assert main([*base, "--out-dir", str(tmp_path / "a"), *tiny_cli_args]) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1 and "climbs out of the data root" in lines[0]
    folders = ["stam", "train", "--data-format", "folder", "--data-root", str(motion_root), "--train-split", "."]
    assert main([*folders, "--out-dir", str(tmp_path / "b"), *tiny_cli_args, "--num-classes", "7"]) == 2
    assert "--num-classes 0" in capsys.readouterr().err and not (tmp_path / "b").exists()
    assert main([*folders, "--out-dir", str(tmp_path / "c"), *tiny_cli_args, "--kd-weight", "0.5"]) == 2
    assert "--teacher-checkpoint" in capsys.readouterr().err


class _Payload:
    """A pickle that would create a file when unpickled: what a malicious checkpoint carries."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.parametrize("suffix", [".pth", ".pkl"])
def test_untrusted_weight_files_are_refused(motion_root, tmp_path, tiny_cli_args, suffix, capsys):
    target = tmp_path / "pwned"
    evil = tmp_path / f"evil{suffix}"
    if suffix == ".pth":
        torch.save({"model": {"head.weight": torch.zeros(4, 2)}, "extra": _Payload(target)}, evil)
    else:
        evil.write_bytes(pickle.dumps({"model": _Payload(target)}))
    clip = str(sorted(motion_root.rglob("*.mp4"))[0])
    train = ["stam", "train", "--data-format", "folder", "--data-root", str(motion_root), "--train-split", ".",
             "--val-split", ".", "--epochs", "1", *tiny_cli_args]  # fmt: skip
    commands = [
        ["stam", "validate", "--weights", str(evil), "--recipe", "stam-8", "--data-root", str(motion_root)],
        ["stam", "infer", clip, "--weights", str(evil), "--recipe", "stam-8"],
        ["stam", "convert", str(evil), str(tmp_path / "out.safetensors")],
        [*train, "--out-dir", str(tmp_path / "r1"), "--init-checkpoint", str(evil)],
        [*train, "--out-dir", str(tmp_path / "r2"), "--teacher-checkpoint", str(evil), "--kd-weight", "0.5"],
    ]
    for argv in commands:
        capsys.readouterr()
        assert main(argv) == 2, argv
        lines = _error_lines(capsys)
        assert len(lines) == 1 and evil.name in lines[0] and "error:" in lines[0], (argv, lines)
        assert not target.exists(), argv
    assert not (tmp_path / "out.safetensors").exists()


def test_convert_original_checkpoint_then_infer(tmp_path, motion_root, capsys):
    with torch.device("meta"):  # the key layout and shapes of a real STAM-16 checkpoint, without the weights
        full = create_stam("stam_16", num_classes=400)
    assert set(to_original_layout(full.state_dict())) >= {"aggregate.pos_embed", "blocks.11.attn.qkv.weight"}
    # A tiny model saved as the release did: torch.save({"model": state_dict in the original layout}).
    arch = dict(spatial="vit_tiny_patch16_224", spatial_kwargs=json.loads(SPATIAL), temporal_depth=1,
                temporal_heads=2, temporal_mlp_dim=32)  # fmt: skip
    model = create_stam("stam_16", num_classes=3, **arch).eval()
    original = tmp_path / "stam_tiny.pth"
    torch.save({"model": to_original_layout(model.state_dict()), "epoch": 10}, original)
    classes = tmp_path / "classes.txt"
    classes.write_text("walk\nrun\njump\n")
    out = tmp_path / "stam_tiny.safetensors"
    tiny = ["--model", "vit_tiny_patch16_224", "--model-kwargs", SPATIAL, "--temporal-depth", "1",
            "--temporal-heads", "2", "--temporal-mlp-dim", "32", "--img-size", "32"]  # fmt: skip
    args = ["stam", "convert", str(original), str(out), "--recipe", "stam-16", "--classes", str(classes)]
    assert main([*args, *tiny]) == 0
    loaded, recipe, names = load_trained(out)
    assert names == ["walk", "run", "jump"] and recipe.num_frames == 16 and recipe.frame_rate == 1.6
    video = torch.rand(2, 16, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(video), model(video))
    one = sorted(motion_root.rglob("*.mp4"))[0]
    report = tmp_path / "p.json"
    assert main(["stam", "infer", str(one), "--weights", str(out), "--json", str(report), "--device", "cpu"]) == 0
    top = _strict_json(report)["predictions"][0]["top"]
    assert {t["class"] for t in top} == set(names)
    # the original file itself, with its recipe: the class count is read from its head
    recipe = dataclasses.replace(RECIPES["stam-16"], model="vit_tiny_patch16_224", model_kwargs=SPATIAL,
                                 temporal_depth=1, temporal_heads=2, temporal_mlp_dim=32, img_size=32)  # fmt: skip
    direct = load_weights(original, recipe=recipe)
    assert direct.model.num_classes == 3 and direct.classes == ["0", "1", "2"]
    capsys.readouterr()
    # Strict: a checkpoint that does not fit the architecture is refused (one line naming the problem).
    assert main([*args, *tiny[:4], "--temporal-depth", "2", "--temporal-heads", "2", "--temporal-mlp-dim", "32",
                 "--img-size", "32"]) == 2  # fmt: skip
    assert "layers.1" in capsys.readouterr().err


def test_recipes_listed(capsys):
    assert main(["stam", "recipes"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in RECIPES) and "79.3" in out
    assert [RECIPES[n].num_frames for n in ("stam-8", "stam-16", "stam-32", "stam-64")] == [8, 16, 32, 64]
    assert RECIPES["stam-64"].frame_rate == 6.4 and RECIPES["stam-16"].normalize == "none"
    assert main(["stam", "recipes", "stam-32"]) == 0
    assert "--kd-weight" in capsys.readouterr().out


def test_old_spellings_name_the_dialect(capsys):
    for flag, hint in (("--topk", "--top-k"), ("--kd-alpha", "--kd-weight"), ("--spatial-checkpoint", "--init")):
        with pytest.raises(SystemExit) as exited:
            main(["stam", "train", "--data-root", ".", flag, "1"])
        assert exited.value.code == 2 and hint in capsys.readouterr().err


def test_parsers_build_without_torch():
    code = "import sys, argparse\nfrom miil.stam.cli import register\nregister(argparse.ArgumentParser())\n"
    code += "print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr[-2000:]


@pytest.mark.ddp
@pytest.mark.slow
def test_train_under_torchrun(motion_root, tmp_path, stam_train_args):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "miil.core.cli", *stam_train_args(motion_root, out)]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    meta = json.loads((out / "best.json").read_text())
    assert meta["world_size"] == 2 and (out / "best.safetensors").is_file()
