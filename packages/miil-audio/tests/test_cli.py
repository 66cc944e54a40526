"""``miil audio train | validate | infer | convert`` on real spoken keywords written to tmp_path, tiny EAT."""

import argparse
import json
import os
import subprocess
import sys

import pytest
import soundfile as sf
import torch

from miil.audio.cli import register
from miil.core.cli import main

TINY_ARGS = [
    "--recipe", "speechcommands_v2_35_eat_s",
    "--dataset", "folder",
    "--train-split", "train",
    "--val-split", "val",
    "--sample-rate", "8000",
    "--seq-len", "1024",
    "--ds-factors", "2", "2",
    "--base-channels", "4",
    "--embed-dim", "16",
    "--depth", "1",
    "--num-heads", "2",
    "--mlp-dim", "32",
    "--num-classes", "0",
    "--epochs", "2",
    "--batch-size", "6",
    "--mix-start-epoch", "1",
    "--amp", "false",
    "--device", "cpu",
    "--progress", "false",
]  # fmt: skip


def _parse(argv):
    parser = argparse.ArgumentParser()
    register(parser)
    return parser.parse_args(argv)


def test_recipe_options_default_to_the_chosen_recipe():
    from miil.audio.cli import _recipe_from_argv

    audioset = _recipe_from_argv(_parse(["train", "--recipe", "audioset_eat_m"]))
    assert audioset.loss == "bce" and audioset.model == "eat_m" and audioset.aug_noise == ()
    assert audioset.batch_size == 208 and audioset.balanced_sampler
    esc = _recipe_from_argv(_parse(["train", "--recipe", "esc50_eat_s", "--fold", "3", "--aug-noise"]))
    assert esc.fold == 3 and esc.aug_noise == () and esc.seq_len == 114688 and esc.lr == 3e-4


def test_train_validate_infer(tmp_path, keyword_folders, capsys):
    run = tmp_path / "run"
    cache = tmp_path / "cache"
    argv = ["audio", "train", *TINY_ARGS, "--data-root", str(keyword_folders), "--out-dir", str(run)]
    assert main([*argv, "--cache-dir", str(cache)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["best_epoch"] in (0, 1) and 0 <= out["best_metric"] <= 100
    best = json.loads((run / "best.json").read_text())
    assert best["run_info"]["classes"] == ["no", "stop", "yes"] and best["config"]["num_classes"] == 3
    assert best["config"]["sample_rate"] == 8000 and best["source"] in ("raw", "ema")
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and "top1" in rows[0]["val"] and "top1" in rows[0]["val_ema"]
    assert len(list(cache.glob("*.8000.wav"))) == 24  # every clip resampled once, 22.05 -> 8 kHz

    assert main(["audio", "validate", str(run), "--json"]) == 0
    printed = capsys.readouterr().out
    row = json.loads(printed.strip().splitlines()[-1])[0]
    assert row["top1"] == pytest.approx(best["metrics"]["top1"], abs=1e-6) and row["clips"] == 6

    clip = sorted((keyword_folders / "val" / "yes").glob("*.wav"))[0]
    assert main(["audio", "infer", str(clip), "--run", str(run), "--top-k", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])[0]
    assert len(result["top"]) == 2 and {p["class"] for p in result["top"]} <= {"no", "stop", "yes"}
    assert result["top"][0]["score"] >= result["top"][1]["score"]
    assert result["seconds"] == pytest.approx(sf.info(str(clip)).duration, abs=1e-3)


def test_infer_long_file_uses_windows_and_errors_are_clear(tmp_path, keyword_folders, capsys):
    from miil.audio.cli import _windows

    x = torch.arange(2500.0)
    w = _windows(x, 1000)
    assert w.shape == (4, 1000) and w[-1, -1] == 2499 and w[1, 0] == 500
    assert _windows(torch.ones(10), 16).shape == (1, 16)
    with pytest.raises(FileNotFoundError, match="neither a run folder"):
        main(["audio", "infer", "x.wav", "--run", str(tmp_path / "nothing")])
    with pytest.raises(SystemExit):  # argparse lists the known recipes
        main(["audio", "train", "--recipe", "esc50_eat_xl"])
    capsys.readouterr()
    with pytest.raises(ValueError, match="needs --data-root"):
        main(["audio", "train", "--recipe", "esc50_eat_s", "--out-dir", str(tmp_path / "r")])


def test_convert_cli_writes_safetensors(tmp_path, capsys):
    from .test_convert import _randomised_reference

    ref = _randomised_reference(factors=(4, 4), emb=128, heads=8, layers=1, ff=64, tokens=64)
    torch.save(ref.state_dict(), tmp_path / "best_model.pt")
    out = tmp_path / "eat.safetensors"
    assert main(["audio", "convert", str(tmp_path / "best_model.pt"), str(out)]) == 0
    assert "converted" in capsys.readouterr().out
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["model_args"]["num_classes"] == 5 and meta["model_args"]["seq_len"] == 4096


@pytest.mark.slow
@pytest.mark.ddp
def test_torchrun_two_processes(tmp_path, keyword_folders):
    run = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "miil.core.cli", "audio", "train", *TINY_ARGS, "--batch-size", "3",
        "--data-root", str(keyword_folders), "--out-dir", str(run),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    config = json.loads((run / "config.json").read_text())
    assert config["world_size"] == 2
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["updates"] for r in rows] == [3, 3]  # 18 clips / (3 per process x 2 processes)
    assert 0 <= json.loads((run / "best.json").read_text())["metrics"]["top1"] <= 100


def test_default_recipe_trains_on_real_esc50_layout(tmp_path, keywords, capsys):
    """The default recipe (ESC-50, 22.05 kHz, 114688-sample clips, the full augmentation, AMP, EMA), as a user runs
    it, on spoken keywords in the ESC-50 class-folder layout (``<fold>-`` file names); only the model is tiny."""
    clips, labels, _, sr, words = keywords
    for i, (clip, label) in enumerate(zip(clips, labels)):
        folder = tmp_path / "esc50" / words[label]
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{1 + i % 5}-{i:03d}-A-{label}.wav", clip, sr, subtype="PCM_16")
    run = tmp_path / "run"
    tiny = ["--base-channels", "4", "--embed-dim", "16", "--depth", "1", "--num-heads", "2", "--mlp-dim", "32"]
    short = ["--num-classes", "0", "--epochs", "1", "--batch-size", "4", "--max-steps-per-epoch", "2"]
    argv = ["audio", "train", "--data-root", str(tmp_path / "esc50"), *tiny, *short, "--out-dir", str(run)]
    assert main([*argv, "--device", "cpu", "--progress", "false"]) == 0
    best = json.loads((run / "best.json").read_text())
    assert best["config"]["dataset"] == "esc50" and best["config"]["seq_len"] == 114688
    assert best["run_info"]["classes"] == sorted(words) and 0 <= best["metrics"]["top1"] <= 100
