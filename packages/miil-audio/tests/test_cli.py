"""``miil audio recipes | train | validate | infer | convert`` in the miil dialect, on the miniature corpora and real
spoken keywords written to tmp_path, with a tiny EAT on the CPU.

Covered: the metric that picks the best weights is what ``validate`` reports; the CLI defaults read every miniature
layout; the bad-input contract (truncated, empty, wrong type, missing, a folder where a file belongs) in train,
validate and infer; ``--strict``; recipe-vs-data checks; label files that point outside the data root; pickles that
would run code when loaded.
"""

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch

from miil.audio.cli import register
from miil.core.cli import ArgumentParser, main
from miil.core.data import UnreadableFileWarning
from miil.core.testing import write_bad_inputs

TINY = [
    "--sample-rate", "8000",
    "--seq-len", "1024",
    "--ds-factors", "2", "2",
    "--base-channels", "4",
    "--embed-dim", "16",
    "--depth", "1",
    "--num-heads", "2",
    "--mlp-dim", "32",
    "--amp", "false",
    "--device", "cpu",
    "--progress", "false",
]  # fmt: skip
BAD_REASONS = {
    "truncated": "truncated (the WAV header promises",
    "empty": "empty file",
    "wrong_type": "not a readable audio file",
    "missing": "missing",
    "folder": "a folder, not a file",
}


def _parse(argv):
    parser = ArgumentParser(prog="miil audio")
    register(parser)
    return parser.parse_args(argv)


def _recipe(argv):
    from miil.audio.recipes import RECIPES
    from miil.core.config import dataclass_from_args

    args = _parse(argv)
    return dataclass_from_args(RECIPES[args.recipe], args)


def _stderr_lines(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_recipes_verb_and_options_default_to_the_chosen_recipe(capsys):
    assert main(["audio", "recipes"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ("esc50-eat-s", "urbansound8k-eat-s", "speechcommands-v2-35-eat-s"))
    assert main(["audio", "recipes", "audioset-eat-m"]) == 0
    assert "--data-format" in capsys.readouterr().out
    audioset = _recipe(["train", "--recipe", "audioset-eat-m"])
    assert audioset.loss == "bce" and audioset.model == "eat_m" and audioset.aug_noise == ()
    assert audioset.batch_size == 208 and audioset.balanced_sampler and audioset.data_format == "audioset"
    esc = _recipe(["train", "--recipe", "esc50-eat-s", "--val-split", "3", "--aug-noise", "--strict"])
    assert esc.splits() == ("rest", "3") and esc.aug_noise == () and esc.seq_len == 114688 and esc.strict
    for argv, hint in ((["--recipe", "esc50_eat_xl"], "esc50-eat-s"), (["--fold", "2"], "--val-split")):
        with pytest.raises(SystemExit) as exited:  # a usage error: one line naming what to use instead
            main(["audio", "train", *argv])
        assert exited.value.code == 2 and hint in capsys.readouterr().err


@pytest.mark.parametrize(
    "recipe, fixture, sizes",
    [
        ("esc50-eat-s", "esc50_root", (20, 5)),
        ("urbansound8k-eat-s", "urbansound8k_root", (45, 5)),
        ("speechcommands-v2-35-eat-s", "speech_commands_root", (24, 4)),
        ("audioset-eat-m", "audioset_root", (8, 4)),
    ],
)
def test_cli_defaults_read_the_miniature_layouts(recipe, fixture, sizes, request):
    """``train --recipe R --data-root ROOT`` and nothing else finds the data as each miniature generator writes it."""
    from miil.audio.training import build_datasets

    root = request.getfixturevalue(fixture)
    config = _recipe(["train", "--recipe", recipe, "--data-root", str(root), "--seq-len", "4096"])
    train, val = build_datasets(config)
    assert (len(train), len(val)) == sizes and train.classes == val.classes
    x, _ = val[0]
    assert x.shape == (1, 4096)


@pytest.fixture(scope="module")
def esc50_run(tmp_path_factory, esc50_root):
    """A finished two-epoch tiny run of the default recipe (ESC-50, fold 1 held out) from the CLI."""
    run = tmp_path_factory.mktemp("runs") / "esc50"
    argv = ["audio", "train", "--data-root", str(esc50_root), "--out-dir", str(run), *TINY]
    assert main([*argv, "--epochs", "2", "--batch-size", "4"]) == 0
    return run


def test_validate_reports_the_metric_that_chose_the_best_weights(esc50_run, tmp_path, capsys):
    best = json.loads((esc50_run / "best.json").read_text())
    assert best["run_info"]["recipe"] == "esc50-eat-s" and best["config"]["val_split"] == "1"
    assert best["eval_precision"] == "fp32" and best["config"]["num_classes"] == 5
    report = tmp_path / "validate.json"
    capsys.readouterr()
    assert main(["audio", "validate", "--weights", str(esc50_run), "--json", str(report), "--progress", "false"]) == 0
    got = json.loads(report.read_text())
    assert got["samples"] == 5 and got["skipped"] == [] and got["precision"] == "fp32"
    assert got["metrics"]["top1"] == best["metrics"]["top1"]  # exactly: same data, meter, batches, precision
    assert got["metrics"]["loss"] == pytest.approx(best["metrics"]["loss"], rel=1e-6)
    assert "top1" in capsys.readouterr().out
    # the same weights named as a file inside the run, and on another fold given on the command line
    assert main(["audio", "validate", "--weights", str(esc50_run / "best.safetensors"), "--val-split", "2"]) == 0
    assert "split 2" in capsys.readouterr().out


def _esc50_with_bad_files(src: Path, dst: Path, good: Path, fold: str) -> dict[str, Path]:
    """Replace five clips of ``fold`` in a copy of the miniature ESC-50 by the five kinds of bad input."""
    if not dst.exists():
        shutil.copytree(src, dst)
    bad = write_bad_inputs(dst.parent / "bad", good=good)
    rows = (dst / "meta" / "esc50.csv").read_text().splitlines()
    names = [r.split(",")[0] for r in rows[1:] if r.split(",")[1] == fold]
    placed = {}
    for kind, name in zip(BAD_REASONS, names):
        target = dst / "audio" / name
        target.unlink()
        if kind == "folder":
            target.mkdir()
        elif kind != "missing":
            shutil.copy(bad[kind], target)
        placed[kind] = target
    return placed


def test_bad_inputs_in_validate_and_train(esc50_run, tmp_path, capsys):
    from miil.audio.miniature import make_esc50

    src = make_esc50(tmp_path / "src", takes=2, seconds=1.0)  # 10 clips per fold
    good = next((src / "audio").glob("2-*.wav"))
    placed = _esc50_with_bad_files(src, tmp_path / "ESC-50-bad", good, fold="1")  # validation
    in_training = _esc50_with_bad_files(src, tmp_path / "ESC-50-bad", good, fold="3")
    report = tmp_path / "bad.json"
    argv = ["audio", "validate", "--weights", str(esc50_run), "--data-root", str(tmp_path / "ESC-50-bad")]
    argv += ["--progress", "false"]
    capsys.readouterr()
    with pytest.warns(UnreadableFileWarning) as warned:
        assert main([*argv, "--json", str(report)]) == 3
    got = json.loads(report.read_text())
    assert got["samples"] == 5 and got["skipped_count"] == 5  # skipped inputs are not samples
    reasons = {Path(s["file"]).name: s["reason"] for s in got["skipped"]}
    for kind, path in placed.items():
        assert reasons[path.name].startswith(BAD_REASONS[kind]), (kind, reasons[path.name])
        # one warning per file, naming it and the reason
        assert [str(w.message) for w in warned if str(path) in str(w.message)] == [
            f"skipping unreadable file {path}: {reasons[path.name]}"
        ]
    assert "skipped 5 unreadable input(s)" in capsys.readouterr().out
    assert main([*argv, "--strict"]) == 2
    lines = _stderr_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("miil audio validate: error: cannot read audio file")
    # training meets the bad clips of fold 3 in its batches and those of fold 1 when it validates
    run = tmp_path / "run-bad"
    train = ["audio", "train", "--data-root", str(tmp_path / "ESC-50-bad"), "--out-dir", str(run), *TINY]
    assert main([*train, "--epochs", "1", "--batch-size", "8"]) == 3
    skipped = {Path(s["file"]).name: s["reason"] for s in json.loads((run / "skipped.json").read_text())}
    assert sorted(skipped) == sorted(p.name for p in [*placed.values(), *in_training.values()])
    for kind, path in in_training.items():
        assert skipped[path.name].startswith(BAD_REASONS[kind])
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["skipped_unreadable"] == 5 and rows[0]["val"]["skipped_unreadable"] == 5
    out = capsys.readouterr().out
    assert "skipped 10 unreadable input(s)" in out and f"plot: miil plot {run}" in out
    assert main([*train, "--out-dir", str(tmp_path / "run-strict"), "--epochs", "1", "--strict"]) == 2
    assert len(_stderr_lines(capsys)) == 1


def test_infer_files_and_folders_with_bad_inputs(esc50_run, esc50_root, tmp_path, capsys):
    clips = sorted((esc50_root / "audio").glob("*.wav"))[:2]
    folder = tmp_path / "inputs"
    bad = write_bad_inputs(folder, good=clips[0])
    shutil.copy(clips[1], folder / "nested.wav")
    report = tmp_path / "infer.json"
    classes = json.loads((esc50_run / "best.json").read_text())["run_info"]["classes"]
    argv = ["audio", "infer", str(clips[0]), str(folder), "--weights", str(esc50_run), "--top-k", "2"]
    capsys.readouterr()
    assert main([*argv, "--json", str(report)]) == 3
    got = json.loads(report.read_text())
    predicted = [Path(p["file"]).name for p in got["predictions"]]
    assert predicted == [clips[0].name, "nested.wav"] and got["samples"] == 2  # the good ones are all predicted
    for entry in got["predictions"]:
        scores = [t["score"] for t in entry["top"]]
        assert len(scores) == 2 and scores == sorted(scores, reverse=True)
        assert {t["class"] for t in entry["top"]} <= set(classes)
    assert got["predictions"][0]["seconds"] == pytest.approx(sf.info(clips[0]).duration, abs=1e-3)
    # the folder was searched: its truncated, empty, wrong-type and folder-named entries are reported (a missing file
    # cannot be found by a search, so it is named on the command line below)
    reasons = {Path(s["file"]).name: s["reason"] for s in got["skipped"]}
    for kind in ("truncated", "empty", "wrong_type", "folder"):
        assert reasons[bad[kind].name].startswith(BAD_REASONS[kind]), (kind, reasons)
    out = capsys.readouterr().out
    assert out.count("  1. ") == 2 and "skipped 4 unreadable input(s)" in out
    assert main(["audio", "infer", str(bad["missing"]), str(clips[1]), "--weights", str(esc50_run)]) == 3
    assert "missing" in capsys.readouterr().out
    assert main([*argv, "--strict"]) == 2
    assert len(_stderr_lines(capsys)) == 1


def test_recipe_against_data_and_label_paths_are_checked_before_training(esc50_root, tmp_path, capsys):
    base = ["audio", "train", "--data-root", str(esc50_root), "--epochs", "1", *TINY]
    assert main([*base, "--recipe", "audioset-eat-m", "--data-format", "esc50", "--out-dir", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "one class per clip" in err and "--recipe esc50-eat-s" in err and not (tmp_path / "a").exists()
    assert main([*base, "--num-classes", "7", "--out-dir", str(tmp_path / "b")]) == 2
    assert "--num-classes 0" in capsys.readouterr().err
    assert main([*base, "--data-format", "speechcommands", "--out-dir", str(tmp_path / "c")]) == 2
    capsys.readouterr()
    # an ESC-50 metadata row outside the data root is refused (as one line), never read and scored
    root = tmp_path / "ESC-50-escape"
    shutil.copytree(esc50_root, root)
    meta = root / "meta" / "esc50.csv"
    rows = meta.read_text().splitlines()
    rows.append(",".join(["../../../usr/share/sounds/alsa/Noise.wav", *rows[1].split(",")[1:]]))
    meta.write_text("\n".join(rows) + "\n")
    assert main(["audio", "train", "--data-root", str(root), "--out-dir", str(tmp_path / "d"), *TINY]) == 2
    lines = _stderr_lines(capsys)
    assert len(lines) == 1 and "climbs out of the data root" in lines[0]


class _Payload:
    """A pickle that would create a file when unpickled: what a malicious checkpoint carries."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.parametrize("suffix", [".pt", ".pkl"])
def test_untrusted_weight_files_are_refused(esc50_root, esc50_run, tmp_path, suffix, capsys):
    target = tmp_path / "pwned"
    evil = tmp_path / f"evil{suffix}"
    if suffix == ".pt":
        torch.save({"model_dict": {"w": torch.zeros(2)}, "extra": _Payload(target)}, evil)
    else:
        evil.write_bytes(pickle.dumps({"model_dict": _Payload(target)}))
    clip = next((esc50_root / "audio").glob("*.wav"))
    commands = [
        ["audio", "validate", "--weights", str(evil), "--data-root", str(esc50_root)],
        ["audio", "infer", str(clip), "--weights", str(evil)],
        ["audio", "convert", str(evil), str(tmp_path / "out.safetensors")],
        ["audio", "train", "--data-root", str(esc50_root), "--init-checkpoint", str(evil), *TINY,
         "--out-dir", str(tmp_path / "run"), "--epochs", "1"],
    ]  # fmt: skip
    for argv in commands:
        capsys.readouterr()
        assert main(argv) == 2, argv
        lines = [line for line in _stderr_lines(capsys) if line.startswith("miil audio")]  # torch may warn too
        assert len(lines) == 1 and evil.name in lines[0] and "error:" in lines[0], (argv, lines)
        assert not target.exists(), argv
    assert not (tmp_path / "out.safetensors").exists()


def test_convert_then_infer_with_the_converted_file(tmp_path, keyword_folders, capsys):
    from .test_convert import _randomised_reference

    ref = _randomised_reference(factors=(4, 4), emb=128, heads=8, layers=1, ff=64, tokens=64)
    torch.save(ref.state_dict(), tmp_path / "best_model.pt")
    out = tmp_path / "eat.safetensors"
    assert main(["audio", "convert", str(tmp_path / "best_model.pt"), str(out)]) == 0
    assert "converted" in capsys.readouterr().out
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["model_args"]["num_classes"] == 5 and meta["model_args"]["seq_len"] == 4096
    names = tmp_path / "classes.txt"
    names.write_text("a\nb\nc\nd\ne\n")
    clip = sorted((keyword_folders / "val" / "yes").glob("*.wav"))[0]
    report = tmp_path / "p.json"
    argv = ["audio", "infer", str(clip), "--weights", str(out), "--classes", str(names), "--json", str(report)]
    assert main(argv) == 0
    top = json.loads(report.read_text())["predictions"][0]["top"]
    assert len(top) == 5 and {t["class"] for t in top} == set("abcde")
    assert abs(sum(t["score"] for t in top) - 1.0) < 1e-4
    assert main(["audio", "convert", str(tmp_path / "best_model.pt"), str(tmp_path / "eat.pt")]) == 2


def test_windows_cover_long_files():
    from miil.audio.data import windows

    x = torch.arange(2500.0)
    w = windows(x, 1000)
    assert w.shape == (4, 1000) and w[-1, -1] == 2499 and w[1, 0] == 500
    assert windows(torch.ones(10), 16).shape == (1, 16)


def test_default_recipe_trains_on_the_class_folder_layout_of_esc50(tmp_path, keywords):
    """The default recipe (ESC-50, 22.05 kHz, 114688-sample clips, the full augmentation, AMP, EMA), as a user runs
    it, on spoken keywords in the original repository's class-folder layout (``<fold>-`` file names); only the model
    is tiny."""
    clips, labels, _, sr, words = keywords
    for i, (clip, label) in enumerate(zip(clips, labels)):
        folder = tmp_path / "esc50" / words[label]
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{1 + i % 5}-{i:03d}-A-{label}.wav", clip, sr, subtype="PCM_16")
    run = tmp_path / "run"
    tiny = ["--base-channels", "4", "--embed-dim", "16", "--depth", "1", "--num-heads", "2", "--mlp-dim", "32"]
    short = ["--epochs", "1", "--batch-size", "4", "--max-steps-per-epoch", "2"]
    argv = ["audio", "train", "--data-root", str(tmp_path / "esc50"), *tiny, *short, "--out-dir", str(run)]
    assert main([*argv, "--device", "cpu", "--progress", "false"]) == 0
    best = json.loads((run / "best.json").read_text())
    assert best["config"]["data_format"] == "esc50" and best["config"]["seq_len"] == 114688
    assert best["run_info"]["classes"] == sorted(words) and 0 <= best["metrics"]["top1"] <= 100


@pytest.mark.slow
@pytest.mark.ddp
def test_torchrun_two_processes(tmp_path, keyword_folders):
    run = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "miil.core.cli", "audio", "train", "--recipe", "speechcommands-v2-35-eat-s", "--data-format", "folder",
        "--val-split", "val", *TINY, "--epochs", "2", "--batch-size", "3", "--mix-start-epoch", "1",
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


def test_parsers_build_without_torch():
    code = (
        "import sys, argparse\n"
        "from miil.audio.cli import register\n"
        "register(argparse.ArgumentParser())\n"
        "print('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr[-2000:]


def test_argparse_namespace_is_the_recipe_fields():
    args = _parse(["train", "--data-format", "folder", "--train-split", "train", "--val-split", "val"])
    assert isinstance(args, argparse.Namespace) and args.data_format == "folder" and args.val_split == "val"
