"""``miil stam train | validate | infer | convert | recipes`` on tiny models and short encoded clips, on CPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings

import pytest
import torch

from miil.core.cli import main
from miil.core.io import KeyMappingError
from miil.stam import RECIPES, create_stam, load_trained, to_original_layout
from miil.stam.miniature import KINETICS_MOTION_LABELS, make_kinetics400

SPATIAL = json.dumps({"img_size": 32, "patch_size": 16, "embed_dim": 32, "depth": 1, "num_heads": 2})


def test_train_writes_a_run(trained_run, motion_classes):
    meta = json.loads((trained_run / "best.json").read_text())
    assert meta["run_info"]["classes"] == sorted(motion_classes)
    assert meta["run_info"]["model"]["num_frames"] == 8 and meta["config"]["frame_rate"] == 0.8
    assert meta["config"]["num_classes"] == 0 and meta["run_info"]["model"]["num_classes"] == 4
    history = [json.loads(x) for x in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == 1 and "top1" in history[0]["val"]
    model, recipe, classes = load_trained(trained_run)
    assert model.num_frames == 8 and recipe.frame_rate == 0.8 and classes == sorted(motion_classes)


def test_validate_counts_unreadable_videos(trained_run, motion_root, tmp_path, capsys):
    val = tmp_path / "val"
    shutil.copytree(motion_root, val)
    good = sorted(val.rglob("*.mp4"))[0]
    (good.parent / "truncated.mp4").write_bytes(good.read_bytes()[:300])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["stam", "validate", "--weights", str(trained_run), "--root", str(val), "--device", "cpu",
                     "--batch-size", "4", "--eval-views", "2", "--output", str(tmp_path / "m.json")])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    metrics = json.loads(out.strip().splitlines()[-1])
    assert metrics["videos"] == 13 and metrics["unreadable"] == 1 and metrics["readable"] == 12
    assert 0.0 <= metrics["top1"] <= 100.0 and metrics["top1_all"] == pytest.approx(metrics["top1"] * 12 / 13)
    assert "1 unreadable" in out and json.loads((tmp_path / "m.json").read_text()) == metrics
    with pytest.raises(Exception, match="truncated.mp4"):
        main(["stam", "validate", "--weights", str(trained_run), "--root", str(val), "--device", "cpu", "--strict"])


def test_infer_file_and_folder(trained_run, motion_root, motion_classes, capsys):
    one = sorted(motion_root.rglob("*.mp4"))[0]
    assert main(["stam", "infer", str(one), "--weights", str(trained_run), "--topk", "2", "--device", "cpu"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{one}: ")
    shown = [part.split()[0] for part in line.removeprefix(f"{one}: ").split(", ")]
    assert len(shown) == 2 and set(shown) <= set(motion_classes)
    code = main(["stam", "infer", str(motion_root), "--weights", str(trained_run), "--json", "--device", "cpu",
                 "--sampling", "segment", "--num-frames", "4"])  # fmt: skip
    assert code == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == 12
    for entry in results:
        probs = [t["prob"] for t in entry["top"]]
        assert len(probs) == 4 and probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1, abs=1e-4)


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
    tiny = ["--spatial", "vit_tiny_patch16_224", "--spatial-kwargs", SPATIAL, "--temporal-depth", "1",
            "--temporal-heads", "2", "--temporal-mlp-dim", "32", "--img-size", "32"]  # fmt: skip
    args = ["stam", "convert", str(original), "--recipe", "STAM-16", "--classes", str(classes), "--out", str(out)]
    assert main([*args, *tiny]) == 0
    loaded, recipe, names = load_trained(out)
    assert names == ["walk", "run", "jump"] and recipe.num_frames == 16 and recipe.frame_rate == 1.6
    video = torch.rand(2, 16, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(video), model(video))
    one = sorted(motion_root.rglob("*.mp4"))[0]
    capsys.readouterr()
    assert main(["stam", "infer", str(one), "--weights", str(out), "--json", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [t["class"] for t in result[0]["top"]] and {t["class"] for t in result[0]["top"]} == set(names)
    # Strict: a checkpoint that does not fit the architecture is refused, naming the keys.
    with pytest.raises(KeyMappingError, match="layers.1"):
        main([*args, *tiny[:4], "--temporal-depth", "2", "--temporal-heads", "2", "--temporal-mlp-dim", "32",
              "--img-size", "32"])  # fmt: skip


def test_train_and_validate_on_the_kinetics_layout(tmp_path, tiny_cli_args, capsys):
    root = make_kinetics400(tmp_path / "k400", train_per_class=2, val_per_class=1)
    run, ann = tmp_path / "run", root / "annotations"
    args = ["stam", "train", "--recipe", "STAM-8", "--data-format", "kinetics", "--train-root", str(root / "train")]
    args += ["--train-labels", str(ann / "train.csv"), "--val-root", str(root / "val"), "--val-labels"]
    args += [str(ann / "validate.csv"), "--out-dir", str(run), "--epochs", "1", *tiny_cli_args]
    assert main(args) == 0
    assert json.loads((run / "best.json").read_text())["run_info"]["classes"] == sorted(KINETICS_MOTION_LABELS)
    capsys.readouterr()
    out = tmp_path / "metrics.json"
    code = main(["stam", "validate", "--weights", str(run), "--data-format", "kinetics", "--root", str(root / "val"),
                 "--labels", str(ann / "validate.csv"), "--device", "cpu", "--output", str(out)])  # fmt: skip
    assert code == 0 and 0.0 <= json.loads(out.read_text())["top1"] <= 100.0


def test_recipes_listed(capsys):
    assert main(["stam", "recipes"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in RECIPES) and "79.3" in out
    assert [RECIPES[n].num_frames for n in ("STAM-8", "STAM-16", "STAM-32", "STAM-64")] == [8, 16, 32, 64]
    assert RECIPES["STAM-64"].frame_rate == 6.4 and RECIPES["STAM-16"].normalize == "none"


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
