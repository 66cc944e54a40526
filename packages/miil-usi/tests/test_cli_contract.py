"""The dialect's contracts for ``miil usi``: unreadable inputs in train, validate and infer are skipped with one warning
each (file and reason), counted and listed, not scored, exit 3 (``--strict``: one-line error, exit 2); every option
that takes a weights or logits file refuses a pickle that would run code, and nothing it carries happens."""

import json
import os
import pickle
import shutil
import warnings

import numpy as np
import pytest
import torch

from miil.core.cli import main
from miil.core.data import UnreadableFileWarning
from miil.core.testing import write_bad_inputs

TINY = ["--num-classes", "3", "--img-size", "16", "--batch-size", "8", "--device", "cpu", "--progress", "false"]
TINY += ["--warmup-epochs", "0", "--teacher", "none", "--aug-repeats", "1"]
BAD_IN_FOLDERS = ("truncated", "empty", "wrong_type", "missing")  # a class folder can hold these (missing: a link)


def run(capsys, *argv) -> tuple[int, str, str, list[str]]:
    """Exit status, stdout, stderr and the skipped-input warnings of ``miil ARGV``."""
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
    out, err = capsys.readouterr()
    return code, out, err, [str(w.message) for w in caught if issubclass(w.category, UnreadableFileWarning)]


@pytest.fixture(scope="module")
def bad_root(imagenet_root, tmp_path_factory):
    """The miniature ImageNet with the bad-input set added to one training and one validation class folder."""
    root = tmp_path_factory.mktemp("bad") / "imagenet"
    shutil.copytree(imagenet_root, root)
    planted = {}
    for split in ("train", "val"):
        folder = sorted((root / split).iterdir())[0]
        good = sorted(folder.iterdir())[0]
        files = write_bad_inputs(folder / "bad", good=good)
        shutil.rmtree(files["folder"])  # inside a class folder, a folder is a sub-folder of the class, not an input
        os.symlink(folder / "gone.JPEG", files["missing"])  # a dangling link: listed, then missing when read
        planted[split] = {kind: str(files[kind]) for kind in BAD_IN_FOLDERS}
    return root, planted


def _check_warnings(messages: list[str], planted: dict[str, str]) -> None:
    for kind, path in planted.items():
        mine = {m for m in messages if path in m}
        assert len(mine) == 1, (kind, messages)  # one line per file (each read of it warns alike)
    reasons = {kind: next(m for m in messages if path in m) for kind, path in planted.items()}
    assert reasons["empty"].endswith("empty file") and "truncated" in reasons["truncated"]
    assert "not a readable image file" in reasons["wrong_type"] and "missing" in reasons["missing"]


def test_train_skips_counts_and_exits_3(bad_root, tmp_path, capsys):
    root, planted = bad_root
    out_dir = tmp_path / "run"
    code, out, _, warned = run(capsys, "usi", "train", "--data-root", root, "--model", "test_resnet", "--epochs", "1",
                               *TINY, "--out-dir", out_dir)  # fmt: skip
    assert code == 3
    _check_warnings(warned, planted["train"])
    _check_warnings(warned, planted["val"])
    skipped = {d["file"]: d["reason"] for d in json.loads((out_dir / "skipped.json").read_text())}
    assert set(planted["train"].values()) | set(planted["val"].values()) == set(skipped)
    assert "skipped 8 unreadable input(s)" in out and "--strict" in out
    row = json.loads((out_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert row["skipped_unreadable"] == 4 and row["val"]["skipped_unreadable"] == 4
    code, _, err, _ = run(capsys, "usi", "train", "--data-root", root, "--model", "test_resnet", "--epochs", "1",
                          *TINY, "--out-dir", tmp_path / "strict", "--strict")  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "cannot read image file" in err and "/bad/" in err


def test_validate_skips_counts_and_exits_3(bad_root, imagenet_root, teacher_checkpoint, tmp_path, capsys):
    root, planted = bad_root
    report_file = tmp_path / "val.json"
    common = ["--weights", teacher_checkpoint, "--model", "test_resnet", "--img-size", "16", "--progress", "false"]
    code, out, _, warned = run(capsys, "usi", "validate", "--data-root", root, *common, "--json", report_file)
    assert code == 3
    _check_warnings(warned, planted["val"])
    report = json.loads(report_file.read_text())
    assert report["samples"] == 12 and report["skipped_count"] == 4  # the 12 good images only
    assert {d["file"] for d in report["skipped"]} == set(planted["val"].values())
    assert all(d["reason"] for d in report["skipped"]) and "skipped 4 unreadable input(s)" in out
    clean = tmp_path / "clean.json"  # the same good images alone: the same metric
    assert run(capsys, "usi", "validate", "--data-root", imagenet_root, *common, "--json", clean)[0] == 0
    assert json.loads(clean.read_text())["metrics"] == report["metrics"]
    code, _, err, _ = run(capsys, "usi", "validate", "--data-root", root, *common, "--strict")
    assert code == 2 and err.count("\n") == 1 and "/bad/" in err


def test_infer_skips_counts_and_exits_3(imagenet_root, teacher_checkpoint, tmp_path, capsys):
    good = sorted(sorted((imagenet_root / "val").iterdir())[0].iterdir())[:2]
    bad = write_bad_inputs(tmp_path / "bad", good=good[0])
    inputs = [good[0], *bad.values(), good[1]]
    common = ["--weights", teacher_checkpoint, "--model", "test_resnet", "--img-size", "16", "--progress", "false"]
    report_file = tmp_path / "pred.json"
    code, out, _, warned = run(capsys, "usi", "infer", *inputs, *common, "--json", report_file)
    assert code == 3
    _check_warnings(warned, {k: str(v) for k, v in bad.items() if k != "folder"})
    assert any(str(bad["folder"]) in m and m.endswith("a folder, not a file") for m in warned)
    report = json.loads(report_file.read_text())
    assert [r["file"] for r in report["predictions"]] == [str(good[0]), str(good[1])]
    assert report["samples"] == 2 and {d["file"] for d in report["skipped"]} == {str(p) for p in bad.values()}
    assert sum("\t" in line for line in out.splitlines()) == 2 and "skipped 5 unreadable input(s)" in out
    code, _, err, _ = run(capsys, "usi", "infer", *inputs, *common, "--strict")
    assert code == 2 and err.count("\n") == 1 and str(bad["truncated"]) in err


class _Payload:
    """A pickle that would create a file when unpickled: what a malicious checkpoint carries."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_every_file_option_refuses_code_carrying_pickles(imagenet_root, tmp_path, capsys):
    target = tmp_path / "created-by-payload"
    evil_pth = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(2)}, "extra": _Payload(target)}, evil_pth)
    evil_npy = tmp_path / "evil.npy"
    np.save(evil_npy, np.array([_Payload(target)], dtype=object), allow_pickle=True)
    evil_npy.with_suffix(".json").write_text(json.dumps({"num_samples": 1}))
    evil_pkl = tmp_path / "evil.pkl"
    evil_pkl.write_bytes(pickle.dumps({"model": "x", "top1": _Payload(target)}))
    assert not target.exists()
    train = ["usi", "train", "--data-root", imagenet_root, "--model", "test_resnet", "--epochs", "1", *TINY[:-4]]
    commands = {
        "validate --weights": ["usi", "validate", "--weights", evil_pth, "--model", "test_resnet",
                               "--data-root", imagenet_root],
        "infer --weights": ["usi", "infer", "--weights", evil_pth, "--model", "test_resnet", imagenet_root / "val"],
        "convert SOURCE": ["usi", "convert", evil_pth, tmp_path / "out.safetensors", "--model", "test_resnet"],
        "train --teacher-checkpoint": [*train, "--teacher", "test_resnet", "--teacher-checkpoint", evil_pth,
                                       "--out-dir", tmp_path / "r1"],
        "train --teacher-logits": [*train, "--teacher-logits", evil_npy, "--out-dir", tmp_path / "r2"],
        "precompute-logits --teacher-checkpoint": ["usi", "precompute-logits", "--data-root", imagenet_root,
                                                   "--teacher", "test_resnet", "--teacher-checkpoint", evil_pth,
                                                   "--output", tmp_path / "l.npy", "--device", "cpu"],
        "pareto --accuracy-file": ["usi", "pareto", "--models", "test_resnet", "--accuracy-file", evil_pkl,
                                   "--out-dir", tmp_path / "p"],
    }  # fmt: skip
    for name, argv in commands.items():
        code, _, err, _ = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1, (name, err)
        assert "evil" in err, (name, err)
        assert not target.exists(), name
