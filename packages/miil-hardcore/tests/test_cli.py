"""`miil hardcore ...` end to end on a miniature ImageNet (real digits over real photos) written to disk, with a tiny
search space: the dialect's flags, the run's precision and image size, bad inputs, untrusted files, clear errors."""

import json
import os
import pickle
import subprocess
import sys

import pytest
import torch

from miil.core.cli import main
from miil.core.io import save_safetensors
from miil.core.miniature import make_imagenet
from miil.core.testing import write_bad_inputs
from miil.hardcore import HardCoReSupernet, LatencyTable, SearchResult, load_child, load_supernet

TRAIN = ["--epochs", "1", "--batch-size", "4", "--max-steps-per-epoch", "2", "--device", "cpu", "--progress", "false"]


@pytest.fixture
def imagenet(tmp_path):
    """A miniature ImageNet: ``train/<wnid>`` (3 classes x 8) and ``val/<wnid>`` (3 x 4), 16-24 px."""
    return make_imagenet(
        tmp_path / "imagenet", num_classes=3, train_per_class=8, val_per_class=4, min_size=16, max_size=24
    )


@pytest.fixture
def space_file(tmp_path, tiny_space):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(tiny_space.to_dict()))
    return path


@pytest.fixture
def supernet_run(tmp_path, tiny_space, imagenet):
    """An untrained tiny supernet saved as a train-supernet run folder (weights + sidecar), classes of ``imagenet``."""
    torch.manual_seed(0)
    run = tmp_path / "supernet"
    run.mkdir()
    save_safetensors(HardCoReSupernet(tiny_space, num_classes=3).state_dict(), run / "best.safetensors")
    info = {
        "kind": "supernet",
        "space": tiny_space.to_dict(),
        "num_classes": 3,
        "classes": sorted(p.name for p in (imagenet / "train").iterdir()),
        "img_size": 16,
        "train_percent": 50.0,
        "split_seed": 0,
    }
    (run / "best.json").write_text(json.dumps({"run_info": info, "eval_precision": "fp32"}))
    return run


@pytest.fixture
def arch_file(tmp_path, tiny_space):
    """A search result of the tiny space (the heaviest network), as `search` writes it: arch_def and space."""
    import numpy as np

    arch = tiny_space.heaviest()
    alpha, beta = tiny_space.alpha_beta(arch)
    result = SearchResult("hardcore", arch, 1.0, 0.5, np.asarray(alpha), np.asarray(beta), 0.1)
    path = tmp_path / "arch.json"
    path.write_text(json.dumps({**result.to_dict(tiny_space), "img_size": 16}))
    return path


def _one_line_error(capsys, verb: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith(f"miil hardcore {verb}: error: "), err
    assert "Traceback" not in "\n".join(err)
    return err[-1]


@pytest.mark.slow
def test_cli_pipeline(tmp_path, tiny_space, space_file, imagenet, capsys):
    lut = tmp_path / "lut.json"
    quick = ["--warmup", "0", "--repeats", "1", "--progress", "false"]
    assert (
        main(["hardcore", "lut", "--space", str(space_file), "--num-classes", "3", "--output", str(lut), *quick]) == 0
    )
    table = LatencyTable.load(lut)
    assert table.space == tiny_space and table.timing["num_classes"] == 3
    report = tmp_path / "calibration.json"
    argv = ["hardcore", "calibrate", "--lut", str(lut), "--num-archs", "2", "--update", "--progress", "false"]
    assert main([*argv, "--json", str(report)]) == 0
    assert "predicted ms" in capsys.readouterr().out
    assert (LatencyTable.load(lut).slope, LatencyTable.load(lut).intercept) != (1.0, 0.0)
    assert json.loads(report.read_text())["slope"] == pytest.approx(LatencyTable.load(lut).slope)

    heavy, multi = tmp_path / "heavy", tmp_path / "multi"
    common = ["--space", str(space_file), "--img-size", "16", "--data-root", str(imagenet)]  # train/ and val/ found
    argv = ["hardcore", "train-supernet", "--recipe", "heaviest-path-digits", *common, "--out-dir", str(heavy), *TRAIN]
    assert main(argv) == 0
    meta = json.loads((heavy / "best.json").read_text())
    assert meta["run_info"]["stage"] == "heaviest" and "top1" in meta["metrics"]
    argv = ["hardcore", "train-supernet", "--recipe", "multipath-digits", "--data-root", str(imagenet)]
    assert main([*argv, "--init-checkpoint", str(heavy), "--out-dir", str(multi), *TRAIN]) == 0
    supernet = load_supernet(multi)
    assert supernet.space == tiny_space and supernet.num_classes == 3
    assert "plot: miil plot" in capsys.readouterr().out

    table = LatencyTable.load(lut)  # with the calibration stored by --update
    target = 0.5 * (table.latency(table.lightest()) + table.latency(table.heaviest()))
    arch_out = tmp_path / "found.json"
    argv = ["hardcore", "search", "--weights", str(multi), "--lut", str(lut), "--data-root", str(imagenet)]
    argv += ["--latency-ms", str(target), "--steps", "3", "--batch-size", "4", "--gamma", "0.5", "--device", "cpu"]
    assert main([*argv, "--output", str(arch_out), "--progress", "false"]) == 0
    found = json.loads(arch_out.read_text())
    assert found["predicted_ms"] <= target and found["feasible"] and len(found["history"]) == 3
    assert found["space"] == tiny_space.to_dict()
    arch = tiny_space.parse_arch_def(found["arch_def"])
    assert table.latency(arch) == pytest.approx(found["predicted_ms"])

    child_file = tmp_path / "child.safetensors"
    argv = ["hardcore", "extract", "--weights", str(multi), "--arch", str(arch_out), "--output", str(child_file)]
    assert main(argv) == 0
    child, info = load_child(child_file)
    assert info["arch_def"] == found["arch_def"] and info["classes"] == sorted(
        p.name for p in (imagenet / "train").iterdir()
    )

    ft = tmp_path / "ft"
    argv = ["hardcore", "finetune", "--init-checkpoint", str(multi), "--arch", str(arch_out)]
    assert main([*argv, "--recipe", "finetune-digits", "--data-root", str(imagenet), "--out-dir", str(ft), *TRAIN]) == 0
    assert load_child(ft)[1]["arch_def"] == found["arch_def"]
    capsys.readouterr()

    assert main(["hardcore", "validate", "--weights", str(ft), "--data-root", str(imagenet), "--device", "cpu"]) == 0
    assert "(12 images, fp32)" in capsys.readouterr().out
    image = next(sorted((imagenet / "val").iterdir())[1].iterdir())
    assert main(["hardcore", "infer", "--weights", str(child_file), str(image), "--top-k", "2"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["image"] == str(image) and len(line["top"]) == 2 and line["top"][0][0] in info["classes"]
    probs = [p for _, p in line["top"]]
    assert probs == sorted(probs, reverse=True) and all(0.0 <= p <= 1.0 for p in probs)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["hardcore", "calibrate", "--lut", str(tmp_path / "none.json")]) == 2
    assert "miil hardcore lut" in _one_line_error(capsys, "calibrate")
    assert main(["hardcore", "extract", "--weights", str(tmp_path), "--arch", "hardcorenas_a"]) == 2
    assert "no weights" in _one_line_error(capsys, "extract")
    with pytest.raises(SystemExit) as exc:
        main(["hardcore", "search", "--recipe", "hardcorenas_z"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["hardcore", "train", "--arch", "hardcorenas_a", "--data-dir", str(tmp_path)])
    assert exc.value.code == 2 and "--data-root" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    [pytest.param(["train-supernet"], marks=pytest.mark.slow), ["train", "--arch", "hardcorenas_a"]],
    ids=["train-supernet", "train"],
)
def test_default_recipes_train_on_real_images(command, tmp_path, capsys):
    """``train-supernet`` (heaviest path, ImageNet recipe) and ``train`` (a child from scratch) with their default
    recipes and the paper's search space, as a user runs them, on real photos; only the images are small (32 px)."""
    from miil.core.testing import write_image_folder

    write_image_folder(tmp_path / "data" / "train", ["a", "b", "c"], per_class=6, seed=0, max_side=96)
    write_image_folder(tmp_path / "data" / "val", ["a", "b", "c"], per_class=2, seed=1, max_side=96)
    data = ["--data-root", str(tmp_path / "data"), "--img-size", "32"]
    assert main(["hardcore", *command, *data, "--out-dir", str(tmp_path / "run"), *TRAIN]) == 0
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert best["config"]["randaug"] == "rand-m9-mstd0.5" and best["config"]["reprob"] == 0.2
    assert best["config"]["space"] == "hardcorenas" and 0 <= best["metrics"]["top1"] <= 100


def test_run_image_size_is_read_from_the_supernet_and_the_closed_loop_reports(
    tmp_path, tiny_space, space_file, imagenet, capsys, monkeypatch
):
    """A supernet trained at 16 px is searched and fine-tuned at 16 px without --img-size (the recipes say 224)."""
    import miil.hardcore.commands as commands

    run = tmp_path / "heavy"
    argv = ["hardcore", "train-supernet", "--recipe", "heaviest-path-imagenet", "--space", str(space_file)]
    argv += ["--img-size", "16", "--data-root", str(imagenet), "--out-dir", str(run), "--randaug", "none", *TRAIN]
    assert main(argv) == 0
    lut = tmp_path / "lut.json"
    quick = ["--warmup", "0", "--repeats", "1", "--progress", "false", "--num-classes", "3", "--clock", "thread_cpu"]
    assert main(["hardcore", "lut", "--space", str(space_file), "--output", str(lut), *quick]) == 0
    table = LatencyTable.load(lut)
    capsys.readouterr()

    sizes = []
    real = commands.eval_transform
    monkeypatch.setattr(commands, "eval_transform", lambda size: sizes.append(size) or real(size))
    target = 2.0 * table.latency(table.heaviest())  # generous: met on the device even on a busy machine
    arch_file = tmp_path / "arch.json"
    search = ["hardcore", "search", "--weights", str(run), "--lut", str(lut), "--data-root", str(imagenet)]
    search += ["--latency-ms", str(target), "--steps", "2", "--batch-size", "4", "--device", "cpu", "--progress", "0"]
    assert main([*search, "--output", str(arch_file), "--closed-loop", "--max-rounds", "2"]) == 0
    assert sizes == [16]
    out = capsys.readouterr().out
    assert "image size 16 px" in out and "measured on this device" in out and "meets the target" in out
    found = json.loads(arch_file.read_text())
    loop = found["closed_loop"]
    assert loop["met_on_device"] and loop["measured_ms"] > 0 and loop["rounds"][0]["round"] == 1
    assert found["recipe"]["img_size"] == 16 and found["space"] == tiny_space.to_dict()

    sizes.clear()
    assert main([*search, "--output", str(arch_file), "--img-size", "24", "--closed-loop", "false"]) == 0
    assert sizes == [24] and "closed_loop" not in json.loads(arch_file.read_text())  # an explicit size wins

    ft = tmp_path / "ft"
    argv = ["hardcore", "finetune", "--init-checkpoint", str(run), "--arch", str(arch_file)]
    assert main([*argv, "--data-root", str(imagenet), "--out-dir", str(ft), "--randaug", "none", *TRAIN]) == 0
    assert json.loads((ft / "best.json").read_text())["run_info"]["img_size"] == 16


def test_train_reads_the_space_of_the_search_result_and_validate_reports_the_best_metric(
    tmp_path, tiny_space, imagenet, arch_file, capsys
):
    """`train --arch arch.json` rebuilds the network in the space the search recorded (no --space, its 16 px), and
    `validate --weights RUN` reports exactly the metrics that selected best.safetensors (the run's precision)."""
    run = tmp_path / "scratch"
    argv = ["hardcore", "train", "--arch", str(arch_file), "--data-root", str(imagenet), "--out-dir", str(run)]
    assert main([*argv, *TRAIN, "--epochs", "2", "--randaug", "none", "--reprob", "0"]) == 0
    best = json.loads((run / "best.json").read_text())
    assert best["run_info"]["space"] == tiny_space.to_dict() and best["run_info"]["img_size"] == 16
    assert (
        best["eval_precision"] == "fp32"
        and best["run_info"]["arch_def"] == json.loads(arch_file.read_text())["arch_def"]
    )
    report = tmp_path / "validate.json"
    argv = ["hardcore", "validate", "--weights", str(run), "--data-root", str(imagenet), "--device", "cpu"]
    assert main([*argv, "--batch-size", "8", "--json", str(report)]) == 0  # the engine's eval batch: 2 x 4
    got = json.loads(report.read_text())
    assert got["metrics"] == best["metrics"] and got["samples"] == 12 and got["skipped"] == []
    assert got["precision"] == "fp32"

    capsys.readouterr()
    assert main(["hardcore", "train", "--arch", str(arch_file), "--space", "hardcorenas", *argv[4:6]]) == 2
    assert "searched in" in _one_line_error(capsys, "train")


def test_bad_inputs_are_skipped_counted_and_reported(tmp_path, imagenet, arch_file, capsys):
    """The bad-input contract in train, validate and infer: each unreadable file is one warning line (file and reason),
    listed in --json, not counted as a sample; exit status 3; --strict stops with a one-line error (status 2)."""
    good = next((imagenet / "val").glob("*/*.JPEG"))
    for split in ("train", "val"):
        cls = sorted((imagenet / split).iterdir())[0]
        bad = write_bad_inputs(cls / "bad", good=good)
        (cls / "missing.JPEG").symlink_to(bad["missing"])  # a dangling link: listed, then missing
    run = tmp_path / "run"
    argv = ["hardcore", "train", "--arch", str(arch_file), "--data-root", str(imagenet), "--randaug", "none"]
    assert main([*argv, "--out-dir", str(run), *TRAIN, "--max-steps-per-epoch", "9"]) == 3
    out = capsys.readouterr()
    assert "skipped" in out.out and "--strict" in out.out
    warned = [line for line in out.err.splitlines() if "warning: skipping unreadable file" in line]
    assert {line.split(": ")[1].split()[-1] for line in warned} >= {
        str(p) for p in (imagenet / "val").glob("*/bad/*.JPEG") if p.is_file()
    }
    assert main([*argv, "--out-dir", str(tmp_path / "strict"), *TRAIN, "--strict"]) == 2
    assert "cannot read image file" in _one_line_error(capsys, "train")

    report = tmp_path / "v.json"
    argv = ["hardcore", "validate", "--weights", str(run), "--data-root", str(imagenet), "--device", "cpu"]
    assert main([*argv, "--json", str(report), "--progress", "false"]) == 3
    got = json.loads(report.read_text())
    reasons = {os.path.basename(s["file"]): s["reason"] for s in got["skipped"]}
    assert got["samples"] == 12 and set(reasons) == {"truncated.JPEG", "empty.JPEG", "wrong_type.JPEG", "missing.JPEG"}
    assert reasons["empty.JPEG"] == "empty file" and reasons["truncated.JPEG"].startswith("truncated")
    assert reasons["missing.JPEG"].startswith("missing")
    assert main([*argv, "--strict"]) == 2
    capsys.readouterr()

    folder = tmp_path / "inputs"
    bad = write_bad_inputs(folder, good=good)
    inputs = [str(good), *(str(bad[k]) for k in ("truncated", "empty", "wrong_type", "missing", "folder"))]
    report = tmp_path / "i.json"
    assert main(["hardcore", "infer", "--weights", str(run), *inputs, "--json", str(report), "--progress", "0"]) == 3
    out = capsys.readouterr()
    lines = [json.loads(line) for line in out.out.splitlines() if line.startswith("{")]
    assert [line["image"] for line in lines] == [str(good)]
    assert len([line for line in out.err.splitlines() if "warning: skipping" in line]) == 5
    got = json.loads(report.read_text())
    assert got["samples"] == 1 and len(got["predictions"]) == 1
    assert {s["file"]: s["reason"] for s in got["skipped"]}[str(bad["folder"])] == "a folder, not a file"
    assert main(["hardcore", "infer", "--weights", str(run), *inputs, "--strict"]) == 2
    _one_line_error(capsys, "infer")


def test_recipe_and_data_are_checked_before_training(tmp_path, imagenet, supernet_run, arch_file, capsys):
    argv = ["hardcore", "train", "--arch", str(arch_file), "--data-root", str(imagenet), *TRAIN]
    assert main([*argv, "--train-split", "training", "--out-dir", str(tmp_path / "a")]) == 2
    assert "--train-split" in _one_line_error(capsys, "train")
    assert not (tmp_path / "a").exists()

    argv = ["hardcore", "train-supernet", "--recipe", "multipath-digits", "--data-root", str(imagenet), *TRAIN]
    assert main([*argv, "--out-dir", str(tmp_path / "b")]) == 2
    assert "--init-checkpoint" in _one_line_error(capsys, "train-supernet")

    other = make_imagenet(
        tmp_path / "five", num_classes=5, train_per_class=2, val_per_class=1, min_size=16, max_size=16
    )
    argv = ["hardcore", "finetune", "--init-checkpoint", str(supernet_run), "--arch", str(arch_file)]
    assert main([*argv, "--data-root", str(other), "--out-dir", str(tmp_path / "c"), *TRAIN]) == 2
    assert "trained on 3" in _one_line_error(capsys, "finetune")
    assert not (tmp_path / "c").exists()

    child = tmp_path / "child.safetensors"
    assert (
        main(["hardcore", "extract", "--weights", str(supernet_run), "--arch", str(arch_file), "--output", str(child)])
        == 0
    )
    assert main(["hardcore", "validate", "--weights", str(child), "--data-root", str(other), "--device", "cpu"]) == 2
    assert "trained on 3" in _one_line_error(capsys, "validate")


class _Payload:
    """A pickle that would create a file when unpickled (what a malicious checkpoint or table carries)."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def _evil(folder, name, target, sidecar=None):
    path = folder / name
    if path.suffix in (".pt", ".pth"):
        torch.save({"state_dict": {"w": torch.zeros(2)}, "extra": _Payload(target)}, path)
    else:
        path.write_bytes(pickle.dumps({"general": 0.1, "arch_def": _Payload(target)}))
    if sidecar is not None:  # so that the command gets past the sidecar to the weights
        path.with_suffix(".json").write_text(json.dumps({"run_info": sidecar}))
    return path


@pytest.mark.parametrize(
    "option",
    [
        "calibrate --lut",
        "import-lut ORIGINAL",
        "lut --space",
        "train-supernet --init-checkpoint",
        "search --weights",
        "search --lut",
        "extract --weights",
        "extract --arch",
        "finetune --init-checkpoint",
        "finetune --teacher-checkpoint",
        "finetune --arch",
        "train --arch",
        "validate --weights",
        "infer --weights",
        "convert SOURCE",
        "convert --arch",
        "convert --space",
    ],
)
def test_untrusted_files_run_no_code(option, tmp_path, tiny_space, imagenet, supernet_run, arch_file, capsys):
    """Every option that opens a checkpoint, table, space or result file refuses a code-carrying pickle (status 2)
    and nothing the pickle asks for happens."""
    target = tmp_path / "created-by-payload"
    supernet_info = {"kind": "supernet", "space": tiny_space.to_dict(), "num_classes": 3}
    child_info = {**supernet_info, "kind": "child", "arch_def": tiny_space.arch_def(tiny_space.heaviest())}
    pt = lambda info=None: str(_evil(tmp_path, "evil.pt", target, info))  # noqa: E731
    pkl = str(_evil(tmp_path, "evil.pkl", target))
    lut = tmp_path / "lut.json"
    import numpy as np

    LatencyTable(tiny_space, np.ones((2, 2, tiny_space.num_options)), {"stem": 1.0, "head": 1.0}, {}, {}).save(lut)
    data = ["--data-root", str(imagenet)]
    out = str(tmp_path / "out.safetensors")
    verb, _ = option.split()
    argv = {  # built lazily: each entry writes its own evil.pt sidecar
        "calibrate --lut": lambda: ["--lut", pkl],
        "import-lut ORIGINAL": lambda: [pkl, str(tmp_path / "lut-out.json")],
        "lut --space": lambda: ["--space", pkl, "--output", str(tmp_path / "l.json")],
        "train-supernet --init-checkpoint": lambda: [
            "--recipe", "multipath-digits", *data, "--init-checkpoint", pt(supernet_info)
        ],
        "search --weights": lambda: ["--weights", pt(supernet_info), "--lut", str(lut), *data],
        "search --lut": lambda: ["--weights", str(supernet_run), "--lut", pkl, *data],
        "extract --weights": lambda: ["--weights", pt(supernet_info), "--arch", "hardcorenas_a", "--output", out],
        "extract --arch": lambda: ["--weights", str(supernet_run), "--arch", pkl, "--output", out],
        "finetune --init-checkpoint": lambda: [
            "--init-checkpoint", pt(supernet_info), "--arch", str(arch_file), *data
        ],
        "finetune --teacher-checkpoint": lambda: [
            "--init-checkpoint", str(supernet_run), "--teacher-checkpoint", pt(supernet_info), "--arch", str(arch_file),
            *data, "--out-dir", str(tmp_path / "ft"),
        ],
        "finetune --arch": lambda: ["--init-checkpoint", str(supernet_run), "--arch", pkl, *data],
        "train --arch": lambda: ["--arch", pkl, *data],
        "validate --weights": lambda: ["--weights", pt(child_info), *data],
        "infer --weights": lambda: ["--weights", pt(child_info), str(next((imagenet / "val").glob("*/*.JPEG")))],
        "convert SOURCE": lambda: [pt(), out],
        "convert --arch": lambda: [str(supernet_run / "best.safetensors"), out, "--arch", pkl, "--kind", "child"],
        "convert --space": lambda: [pt(), out, "--space", pkl],
    }[option]()  # fmt: skip
    assert main(["hardcore", verb, *argv, "--device", "cpu"] if verb in ("search", "validate", "infer") else
                ["hardcore", verb, *argv]) == 2  # fmt: skip
    message = _one_line_error(capsys, verb)
    assert "evil" in message and "will not be unpickled" in message  # refused at the file, not at a later check
    assert not target.exists()


def test_help_imports_no_torch():
    code = (
        "import sys\nfrom miil.core.cli import main\n"
        "for argv in (['hardcore', '--help'], ['hardcore', 'train', '--help'], ['hardcore', 'search', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "print('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "False"
