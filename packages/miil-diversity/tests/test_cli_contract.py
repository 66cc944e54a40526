"""The dialect's contracts for ``miil diversity``: unreadable inputs in train, validate and infer are skipped with one
warning each (file and reason), counted and listed, not scored, exit 3 (``--strict``: one-line error, exit 2); every
option that takes a weights or logits file refuses a pickle that would run code, and nothing it carries happens."""

import json
import os
import shutil
import warnings

import numpy as np
import pytest
import torch

from miil.core.cli import main
from miil.core.data import UnreadableFileWarning
from miil.core.miniature import make_imagenet
from miil.core.testing import write_bad_inputs

TRAIN = ["--recipe", "usi-supervised", "--model", "test_resnet", "--num-classes", "3", "--img-size", "16"]
TRAIN += ["--epochs", "1", "--batch-size", "8", "--teacher", "none", "--aug-repeats", "1", "--warmup-epochs", "0"]
TRAIN += ["--device", "cpu", "--progress", "false", "--ema", "false"]
KINDS = ("truncated", "empty", "wrong_type", "missing")  # a class folder can hold these (missing: a dangling link)


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
def roots(tmp_path_factory):
    """``(clean, bad, planted)``: a miniature ImageNet, a copy with the bad-input set in one class folder per split,
    and the planted files per split."""
    clean = make_imagenet(tmp_path_factory.mktemp("mini") / "imagenet", num_classes=3, train_per_class=8,
                          val_per_class=4, min_size=16, max_size=24)  # fmt: skip
    bad = tmp_path_factory.mktemp("bad") / "imagenet"
    shutil.copytree(clean, bad)
    planted = {}
    for split in ("train", "val"):
        folder = sorted((bad / split).iterdir())[0]
        files = write_bad_inputs(folder / "bad", good=sorted(folder.iterdir())[0])
        shutil.rmtree(files["folder"])  # inside a class folder, a folder is a sub-folder of the class, not an input
        os.symlink(folder / "gone.JPEG", files["missing"])
        planted[split] = {kind: str(files[kind]) for kind in KINDS}
    return clean, bad, planted


def _one_warning_each(messages: list[str], planted: dict[str, str]) -> None:
    for kind, path in planted.items():
        mine = {m for m in messages if path in m}
        assert len(mine) == 1, (kind, messages)
    assert next(m for m in messages if planted["empty"] in m).endswith("empty file")
    assert "truncated" in next(m for m in messages if planted["truncated"] in m)


def test_train_validate_infer_skip_count_and_exit_3(roots, tmp_path, capsys):
    clean, bad, planted = roots
    run_dir = tmp_path / "run"
    code, out, _, warned = run(capsys, "diversity", "train", "--data-root", bad, *TRAIN, "--out-dir", run_dir)
    assert code == 3
    _one_warning_each(warned, planted["train"])
    _one_warning_each(warned, planted["val"])
    skipped = {d["file"] for d in json.loads((run_dir / "supervised" / "skipped.json").read_text())}
    assert skipped == set(planted["train"].values()) | set(planted["val"].values())
    assert "skipped 8 unreadable input(s)" in out
    code, _, err, _ = run(capsys, "diversity", "train", "--data-root", bad, *TRAIN, "--out-dir", tmp_path / "s",
                          "--strict")  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "/bad/" in err

    report_file = tmp_path / "val.json"
    code, out, _, warned = run(capsys, "diversity", "validate", "--weights", run_dir, "--data-root", bad,
                               "--json", report_file)  # fmt: skip
    assert code == 3
    _one_warning_each(warned, planted["val"])
    report = json.loads(report_file.read_text())
    assert report["samples"] == 12 and {d["file"] for d in report["skipped"]} == set(planted["val"].values())
    clean_file = tmp_path / "clean.json"  # the good images alone give the same metric
    assert (
        run(capsys, "diversity", "validate", "--weights", run_dir, "--data-root", clean, "--json", clean_file)[0] == 0
    )
    assert json.loads(clean_file.read_text())["metrics"] == report["metrics"]
    code, _, err, _ = run(capsys, "diversity", "validate", "--weights", run_dir, "--data-root", bad, "--strict")
    assert code == 2 and err.count("\n") == 1

    good = sorted((clean / "val").rglob("*.JPEG"))[:2]
    files = write_bad_inputs(tmp_path / "inputs", good=good[0])
    pred_file = tmp_path / "pred.json"
    code, out, _, warned = run(capsys, "diversity", "infer", "--weights", run_dir, *good, *files.values(),
                               "--json", pred_file)  # fmt: skip
    assert code == 3
    _one_warning_each(warned, {k: str(v) for k, v in files.items() if k != "folder"})
    pred = json.loads(pred_file.read_text())
    assert [r["file"] for r in pred["predictions"]] == [str(p) for p in good]
    assert {d["file"] for d in pred["skipped"]} == {str(p) for p in files.values()} and "skipped 5" in out
    code, _, err, _ = run(capsys, "diversity", "infer", "--weights", run_dir, *good, *files.values(), "--strict")
    assert code == 2 and err.count("\n") == 1


class _Payload:
    """A pickle that would create a file when unpickled: what a malicious checkpoint carries."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_every_file_option_refuses_code_carrying_pickles(roots, tmp_path, capsys):
    clean = roots[0]
    target = tmp_path / "created-by-payload"
    evil = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(2)}, "extra": _Payload(target)}, evil)
    evil_npy = tmp_path / "evil.npy"
    np.save(evil_npy, np.array([_Payload(target)], dtype=object), allow_pickle=True)
    evil_npy.with_suffix(".json").write_text(json.dumps({"num_samples": 1}))
    assert not target.exists()
    train = ["diversity", "train", "--data-root", clean, *TRAIN[: TRAIN.index("--teacher")]]
    commands = {
        "train --init-checkpoint": [*train, "--init", "dino", "--init-checkpoint", evil, "--out-dir", tmp_path / "a"],
        "train --teacher-checkpoint": [*train, "--teacher", "test_resnet", "--teacher-checkpoint", evil,
                                       "--out-dir", tmp_path / "b"],
        "train --teacher-logits": [*train, "--teacher-logits", evil_npy, "--out-dir", tmp_path / "c"],
        "validate --weights": ["diversity", "validate", "--weights", evil, "--model", "test_resnet",
                               "--data-root", clean],
        "infer --weights": ["diversity", "infer", "--weights", evil, "--model", "test_resnet", clean / "val"],
        "measure --weights": ["diversity", "measure", "--weights", evil, "--model", "test_resnet",
                              "--data-root", clean],
        "transfer --weights": ["diversity", "transfer", "--weights", evil, "--model", "test_resnet",
                               "--data-root", clean, "--out-dir", tmp_path / "d"],
        "convert SOURCE": ["diversity", "convert", evil, tmp_path / "out.safetensors", "--model", "test_resnet"],
    }  # fmt: skip
    for name, argv in commands.items():
        code, _, err, _ = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1, (name, err)
        assert "evil" in err, (name, err)
        assert not target.exists(), name
