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
    for split in ("train", "val"):
        (tmp_path / split).symlink_to(root / split, target_is_directory=True)
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
    common = ["--recipe", "estimate_digits", "--passes", "1", "--batch-size", "8", "--device", "cpu", "--no-progress"]
    argv = ["iqnas", "estimate", "--supernet", str(run), "--data-dir", str(tmp / "train"), "--num-test", "4"]
    assert main([*argv, *common, "--out", str(est_file)]) == 0
    est = AccuracyEstimator.load(est_file)
    assert est.space == small_space and est.metadata["measurements"] == 31 and "kendall_tau" in est.metadata["ranking"]

    latency, params = latency_costs(integer_table), parameter_costs(small_space, num_classes=3)
    limit_ms = sum(latency.bounds()) / 2
    limit_p = sum(params.bounds()) / 2
    arch_file, child = tmp / "arch.json", tmp / "child.safetensors"
    search = ["iqnas", "search", "--estimator", str(est_file), "--lut", str(lut), "--num-classes", "3"]
    argv = [*search, "--latency-ms", str(limit_ms), "--params-m", str(limit_p), "--out", str(arch_file)]
    assert main([*argv, "--supernet", str(run), "--export", str(child)]) == 0
    found = json.loads(arch_file.read_text())
    assert found["feasible"] and found["resources"]["latency"] <= limit_ms and found["resources"]["params"] <= limit_p
    arch = small_space.parse_arch_def(found["arch_def"])
    assert found["predicted_accuracy"] == pytest.approx(est(arch))
    model, meta = load_child(child)
    assert meta["arch_def"] == found["arch_def"] and model.num_classes == 3
    for method in ("dp", "frank_wolfe", "evolution"):
        out = tmp / f"{method}.json"
        assert main([*search, "--latency-ms", str(limit_ms), "--method", method, "--out", str(out)]) == 0
        other = json.loads(out.read_text())
        assert other["feasible"] and other["predicted_accuracy"] <= json.loads(arch_file.read_text())["objective"] + 10
    with pytest.raises(ValueError, match="exactly one limit"):
        main(
            [*search, "--latency-ms", str(limit_ms), "--params-m", "1", "--method", "dp", "--out", str(tmp / "x.json")]
        )

    plot = tmp / "fig.png"
    assert main(["iqnas", "explain", "--estimator", str(est_file), "--plot", str(plot)]) == 0
    assert plot.is_file() and "stage block" in capsys.readouterr().out

    assert (
        main(["iqnas", "validate", "--checkpoint", str(child), "--data-dir", str(tmp / "val"), "--device", "cpu"]) == 0
    )
    assert '"top1"' in capsys.readouterr().out
    image = next(sorted((tmp / "val").iterdir())[1].glob("*.JPEG"))
    assert main(["iqnas", "infer", "--checkpoint", str(child), str(image)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["image"] == str(image)
    ft = tmp / "ft"
    argv = ["iqnas", "train", "--supernet", str(run), "--arch", str(arch_file), "--data-dir", str(tmp / "train")]
    assert main([*argv, "--recipe", "finetune_digits", "--out-dir", str(ft), *TRAIN]) == 0
    assert load_child(ft)[1]["arch_def"] == found["arch_def"]


@pytest.mark.slow
@pytest.mark.ddp
def test_estimate_under_torchrun(setup):
    tmp, run, _ = setup
    out = tmp / "est-ddp.json"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "miil.core.cli",
        "iqnas", "estimate", "--supernet", str(run), "--data-dir", str(tmp / "train"), "--recipe", "estimate_digits",
        "--passes", "1", "--num-test", "3", "--batch-size", "4", "--device", "cpu", "--no-progress", "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    est = AccuracyEstimator.load(out)
    assert est.metadata["measurements"] == 31 and 0.0 <= est.base <= 100.0


def test_estimate_reads_the_image_size_of_the_supernet_run(setup, monkeypatch, capsys):
    """The supernet run says 16 px; the paper's recipe says 224: without --img-size the run's size is used."""
    import miil.iqnas.cli as iqnas_cli

    tmp, run, _ = setup
    sizes = []
    real = iqnas_cli.eval_transform
    monkeypatch.setattr(iqnas_cli, "eval_transform", lambda size: sizes.append(size) or real(size))
    argv = ["iqnas", "estimate", "--supernet", str(run), "--data-dir", str(tmp / "train"), "--recipe", "binas_imagenet"]
    argv += ["--passes", "1", "--batch-size", "8", "--device", "cpu", "--no-progress", "--out", str(tmp / "e.json")]
    assert main(argv) == 0
    assert sizes == [16] and "image size 16 px" in capsys.readouterr().out
    assert AccuracyEstimator.load(tmp / "e.json").metadata["recipe"]["img_size"] == 16
    sizes.clear()
    assert main([*argv, "--img-size", "20"]) == 0
    assert sizes == [20]
