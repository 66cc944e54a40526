"""`miil iqnas ...` end to end on real digit images written to disk, a tiny supernet and a synthetic latency table;
`estimate` also under torchrun (2 CPU processes, gloo)."""

import json
import os
import subprocess
import sys

import pytest
import torch

from miil.core.cli import main
from miil.core.io import save_safetensors
from miil.core.miniature import make_imagenet
from miil.hardcore import HardCoReSupernet, load_child
from miil.iqnas import AccuracyEstimator, latency_costs, parameter_costs

TRAIN = ["--epochs", "1", "--batch-size", "4", "--max-steps-per-epoch", "2", "--device", "cpu", "--progress", "false"]


@pytest.fixture
def setup(tmp_path, small_space, integer_table):
    # a miniature ImageNet: train/<wnid> (3 classes x 8) and val/<wnid> (3 x 4), real digits over real photos
    root = make_imagenet(
        tmp_path / "imagenet", num_classes=3, train_per_class=8, val_per_class=4, min_size=16, max_size=24
    )
    # the dataset's folders as symbolic links (a common layout): --data-root reads through them
    (tmp_path / "data").mkdir()
    for split in ("train", "val"):
        (tmp_path / "data" / split).symlink_to(root / split, target_is_directory=True)
    torch.manual_seed(0)
    run = tmp_path / "supernet"
    run.mkdir()
    save_safetensors(HardCoReSupernet(small_space, num_classes=3).state_dict(), run / "best.safetensors")
    info = {
        "kind": "supernet",
        "space": small_space.to_dict(),
        "num_classes": 3,
        "classes": sorted(p.name for p in (root / "train").iterdir()),
        "img_size": 16,
        "train_percent": 50.0,
        "split_seed": 0,
    }
    (run / "best.json").write_text(json.dumps({"run_info": info}))
    lut = integer_table.save(tmp_path / "lut.json")
    return tmp_path, run, lut


@pytest.mark.slow
def test_cli_estimate_search_explain_train_validate_infer(setup, small_space, integer_table, capsys):
    tmp, run, lut = setup
    est_file = tmp / "est.json"
    common = ["--recipe", "estimate-digits", "--passes", "1", "--batch-size", "8", "--device", "cpu", "--progress", "0"]
    argv = ["iqnas", "estimate", "--weights", str(run), "--data-root", str(tmp / "data"), "--num-test", "4"]
    assert main([*argv, *common, "--output", str(est_file)]) == 0
    est = AccuracyEstimator.load(est_file)
    assert est.space == small_space and est.metadata["measurements"] == 31 and "kendall_tau" in est.metadata["ranking"]

    latency, params = latency_costs(integer_table), parameter_costs(small_space, num_classes=3)
    limit_ms = sum(latency.bounds()) / 2
    limit_p = sum(params.bounds()) / 2
    arch_file, child = tmp / "arch.json", tmp / "child.safetensors"
    search = ["iqnas", "search", "--estimator", str(est_file), "--lut", str(lut), "--num-classes", "3"]
    argv = [*search, "--latency-ms", str(limit_ms), "--params-m", str(limit_p), "--output", str(arch_file)]
    assert main([*argv, "--weights", str(run), "--export", str(child)]) == 0
    found = json.loads(arch_file.read_text())
    assert found["space"] == small_space.to_dict()
    assert found["feasible"] and found["resources"]["latency"] <= limit_ms and found["resources"]["params"] <= limit_p
    arch = small_space.parse_arch_def(found["arch_def"])
    assert found["predicted_accuracy"] == pytest.approx(est(arch))
    model, meta = load_child(child)
    assert meta["arch_def"] == found["arch_def"] and model.num_classes == 3
    for method in ("dp", "frank_wolfe", "evolution"):
        out = tmp / f"{method}.json"
        assert main([*search, "--latency-ms", str(limit_ms), "--method", method, "--output", str(out)]) == 0
        other = json.loads(out.read_text())
        assert other["feasible"] and other["predicted_accuracy"] <= json.loads(arch_file.read_text())["objective"] + 10
    capsys.readouterr()
    argv = [*search, "--latency-ms", str(limit_ms), "--params-m", "1", "--method", "dp"]
    assert main([*argv, "--output", str(tmp / "x.json")]) == 2
    assert "exactly one limit" in capsys.readouterr().err

    plot, table = tmp / "fig.png", tmp / "contributions.json"
    assert main(["iqnas", "explain", "--estimator", str(est_file), "--output", str(plot), "--json", str(table)]) == 0
    assert plot.is_file() and "stage block" in capsys.readouterr().out
    explained = json.loads(table.read_text())
    assert explained["reference"] == "base" and explained["contributions"] and explained["insights"]

    report = tmp / "validate.json"
    argv = ["iqnas", "validate", "--weights", str(child), "--data-root", str(tmp / "data"), "--device", "cpu"]
    assert main([*argv, "--json", str(report)]) == 0
    assert json.loads(report.read_text())["samples"] == 12
    image = next(sorted((tmp / "data" / "val").iterdir())[1].glob("*.JPEG"))
    assert main(["iqnas", "infer", "--weights", str(child), str(image)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["image"] == str(image)
    ft = tmp / "ft"
    argv = ["iqnas", "train", "--init-checkpoint", str(run), "--arch", str(arch_file), "--data-root", str(tmp / "data")]
    assert main([*argv, "--recipe", "finetune-digits", "--out-dir", str(ft), *TRAIN]) == 0
    assert load_child(ft)[1]["arch_def"] == found["arch_def"]


@pytest.mark.slow
@pytest.mark.ddp
def test_estimate_under_torchrun(setup):
    tmp, run, _ = setup
    out = tmp / "est-ddp.json"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "miil.core.cli",
        "iqnas", "estimate", "--weights", str(run), "--data-root", str(tmp / "data"), "--recipe", "estimate-digits",
        "--passes", "1", "--num-test", "3", "--batch-size", "4", "--device", "cpu", "--progress", "0",
        "--output", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    est = AccuracyEstimator.load(out)
    assert est.metadata["measurements"] == 31 and 0.0 <= est.base <= 100.0


def test_estimate_reads_the_image_size_of_the_supernet_run(setup, monkeypatch, capsys):
    """The supernet run says 16 px; the paper's recipe says 224: without --img-size the run's size is used."""
    import miil.iqnas.commands as commands

    tmp, run, _ = setup
    sizes = []
    real = commands.eval_transform
    monkeypatch.setattr(commands, "eval_transform", lambda size: sizes.append(size) or real(size))
    argv = ["iqnas", "estimate", "--weights", str(run), "--data-root", str(tmp / "data"), "--recipe", "binas-imagenet"]
    argv += [
        "--passes",
        "1",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--progress",
        "0",
        "--output",
        str(tmp / "e.json"),
    ]
    assert main(argv) == 0
    assert sizes == [16] and "image size 16 px" in capsys.readouterr().out
    assert AccuracyEstimator.load(tmp / "e.json").metadata["recipe"]["img_size"] == 16
    sizes.clear()
    assert main([*argv, "--img-size", "20"]) == 0
    assert sizes == [20]


@pytest.fixture
def arch_file(tmp, small_space):
    """A search result of the small space, as `miil iqnas search` writes it (arch_def and the space)."""
    from miil.iqnas import SearchOutcome

    arch = small_space.heaviest()
    outcome = SearchOutcome("milp", arch, 70.0, {"latency": 1.0}, {"latency": 2.0}, 0.01)
    path = tmp / "arch.json"
    path.write_text(json.dumps(outcome.to_dict(small_space)))
    return path


@pytest.fixture
def tmp(setup):
    return setup[0]


def _error_line(capsys, verb):
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith(f"miil iqnas {verb}: error: ") and "Traceback" not in "\n".join(err), err
    return err[-1]


def test_train_then_validate_reports_the_metric_that_picked_best(setup, arch_file, capsys):
    """`miil iqnas train` (hardcore's finetune) then `validate --weights RUN`: the metrics recorded in best.json."""
    tmp, run, _ = setup
    ft = tmp / "ft"
    argv = ["iqnas", "train", "--init-checkpoint", str(run), "--arch", str(arch_file), "--data-root", str(tmp / "data")]
    assert main([*argv, "--recipe", "finetune-digits", "--out-dir", str(ft), *TRAIN, "--epochs", "2"]) == 0
    best = json.loads((ft / "best.json").read_text())
    assert best["run_info"]["img_size"] == 16 and best["eval_precision"] == "fp32"
    report = tmp / "v.json"
    argv = ["iqnas", "validate", "--weights", str(ft), "--data-root", str(tmp / "data"), "--device", "cpu"]
    assert main([*argv, "--batch-size", "8", "--json", str(report)]) == 0  # the engine's eval batch: 2 x 4
    got = json.loads(report.read_text())
    assert got["metrics"] == best["metrics"] and got["samples"] == 12 and got["precision"] == "fp32"
    assert "plot: miil plot" in capsys.readouterr().out


def test_bad_inputs_in_train_validate_infer(setup, arch_file, capsys):
    from miil.core.testing import write_bad_inputs

    tmp, run, _ = setup
    good = next((tmp / "data" / "val").glob("*/*.JPEG"))
    for split in ("train", "val"):
        write_bad_inputs(sorted((tmp / "data" / split).iterdir())[0] / "bad", good=good)
    ft = tmp / "ft"
    argv = ["iqnas", "train", "--init-checkpoint", str(run), "--arch", str(arch_file), "--data-root", str(tmp / "data")]
    argv += ["--recipe", "finetune-digits", *TRAIN, "--max-steps-per-epoch", "9"]
    assert main([*argv, "--out-dir", str(ft)]) == 3
    assert main([*argv, "--out-dir", str(tmp / "strict"), "--strict"]) == 2
    assert "cannot read image file" in _error_line(capsys, "train")
    report = tmp / "v.json"
    argv = ["iqnas", "validate", "--weights", str(ft), "--data-root", str(tmp / "data"), "--device", "cpu"]
    assert main([*argv, "--json", str(report)]) == 3
    got = json.loads(report.read_text())
    assert got["samples"] == 12 and sorted(s["reason"].split()[0] for s in got["skipped"]) == [
        "empty",
        "not",
        "truncated",
    ]
    bad = write_bad_inputs(tmp / "inputs", good=good)
    capsys.readouterr()
    assert main(["iqnas", "infer", "--weights", str(ft), str(good), *(str(p) for p in bad.values())]) == 3
    out = capsys.readouterr()
    assert len([line for line in out.out.splitlines() if line.startswith("{")]) == 1
    assert sum("warning: skipping unreadable file" in line for line in out.err.splitlines()) == 5, out.err


class _Payload:
    """A pickle that would create a file when unpickled (what a malicious checkpoint or estimator carries)."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.parametrize(
    "option",
    [
        "estimate --weights",
        "search --estimator",
        "search --lut",
        "search --weights",
        "explain --estimator",
        "train --init-checkpoint",
        "train --teacher-checkpoint",
        "train --arch",
        "validate --weights",
        "infer --weights",
    ],
)
def test_untrusted_files_run_no_code(option, setup, small_space, estimator, arch_file, capsys):
    import pickle

    tmp, run, lut = setup
    target = tmp / "created-by-payload"
    pkl = tmp / "evil.pkl"
    pkl.write_bytes(pickle.dumps({"format": 1, "space": _Payload(target)}))

    def pt(kind):
        path = tmp / "evil.pt"
        torch.save({"state_dict": {"w": torch.zeros(2)}, "extra": _Payload(target)}, path)
        info = {"kind": kind, "space": small_space.to_dict(), "num_classes": 3}
        if kind == "child":
            info["arch_def"] = small_space.arch_def(small_space.heaviest())
        path.with_suffix(".json").write_text(json.dumps({"run_info": info}))
        return str(path)

    est = str(estimator.save(tmp / "est.json"))
    data = ["--data-root", str(tmp / "data")]
    train = ["--arch", str(arch_file), *data, "--out-dir", str(tmp / "ft"), "--device", "cpu"]
    verb, _ = option.split()
    argv = {
        "estimate --weights": lambda: ["--weights", pt("supernet"), *data, "--device", "cpu"],
        "search --estimator": lambda: ["--estimator", str(pkl), "--lut", str(lut)],
        "search --lut": lambda: ["--estimator", est, "--lut", str(pkl)],
        "search --weights": lambda: ["--estimator", est, "--lut", str(lut), "--weights", pt("supernet"), "--export",
                                     str(tmp / "c.safetensors"), "--output", str(tmp / "a.json")],
        "explain --estimator": lambda: ["--estimator", str(pkl)],
        "train --init-checkpoint": lambda: ["--init-checkpoint", pt("supernet"), *train],
        "train --teacher-checkpoint": lambda: ["--init-checkpoint", str(run), "--teacher-checkpoint", pt("supernet"),
                                               *train],
        "train --arch": lambda: ["--init-checkpoint", str(run), *train[2:], "--arch", str(pkl)],
        "validate --weights": lambda: ["--weights", pt("child"), *data, "--device", "cpu"],
        "infer --weights": lambda: ["--weights", pt("child"), str(next((tmp / "data" / "val").glob("*/*.JPEG")))],
    }[option]()  # fmt: skip
    assert main(["iqnas", verb, *argv]) == 2
    message = _error_line(capsys, verb)
    assert "evil" in message and "will not be unpickled" in message
    assert not target.exists()


def test_help_imports_no_torch():
    code = (
        "import sys\nfrom miil.core.cli import main\n"
        "for argv in (['iqnas', '--help'], ['iqnas', 'estimate', '--help'], ['iqnas', 'train', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "print('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "False"
