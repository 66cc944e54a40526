"""``miil album train | validate | infer | convert`` on tiny albums of real digit photos (CPU, 1 epoch)."""

import json

import pytest
import torch

from miil.album import PETA
from miil.album.data import eval_album_indices
from miil.album.inference import load_album_model
from miil.core.cli import main

from .conftest import CUFED_CLASSES, PEC_CLASSES
from .test_convert import _original_layout, randomize_batchnorm

TINY = [
    "--model", "test_resnet", "--pretrained", "false", "--img-size", "32", "--album-size", "4",
    "--depth", "1", "--num-heads", "4", "--ffn-dim", "16", "--epochs", "1", "--batch-size", "2",
    "--device", "cpu", "--progress", "false", "--amp", "false", "--ema", "false", "--warmup-epochs", "0",
]  # fmt: skip


def _run(capsys, *argv) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_train_validate_infer_on_ml_cufed_layout(cufed_root, tmp_path, capsys):
    run = tmp_path / "run"
    out = _run(
        capsys, "album", "train", "--data", str(cufed_root), "--layout", "cufed",
        "--split", str(cufed_root / "train_split.txt"), "--val-split", str(cufed_root / "test_split.txt"),
        "--out-dir", str(run), *TINY,
    )  # fmt: skip
    assert "best mAP" in out
    best = json.loads((run / "best.json").read_text())
    assert best["run_info"]["classes"] == CUFED_CLASSES
    assert best["config"]["num_classes"] == 4 and best["config"]["album_size"] == 4
    assert {"mAP", "top1"} <= set(best["metrics"])

    reports, metrics = tmp_path / "reports.json", tmp_path / "metrics.json"
    out = _run(
        capsys, "album", "validate", "--checkpoint", str(run), "--data", str(cufed_root), "--layout", "cufed",
        "--importance-file", str(cufed_root / "image_importance.json"), "--reports", str(reports),
        "--metrics-json", str(metrics),
    )  # fmt: skip
    assert "albums 12 | mAP" in out and "spearman (last_layer)" in out
    values = json.loads(metrics.read_text())
    assert 0 <= values["mAP"] <= 100 and -1 <= values["spearman_rollout"] <= 1
    written = json.loads(reports.read_text())
    assert len(written) == 12 and all(len(r["images"]) == 4 for r in written)  # K = 4 of 5-8 photos
    photos = sorted(p.name for p in (cufed_root / "images" / written[0]["album"]).iterdir())
    assert written[0]["images"] == [photos[i] for i in eval_album_indices(len(photos), 4)]  # sorted uniform

    album = cufed_root / "images" / written[0]["album"]
    report = tmp_path / "album.json"
    out = _run(
        capsys, "album", "infer", str(album), "--checkpoint", str(run), "--json", str(report),
        "--importance-file", str(cufed_root / "image_importance.json"), "--threshold", "0",
    )  # fmt: skip
    assert "most important photos:" in out and "events:" in out and "spearman vs human" in out
    data = json.loads(report.read_text())
    assert sum(data["importance"]["rollout"]) == pytest.approx(1.0, abs=1e-4)
    assert set(data["events"]) == set(CUFED_CLASSES)


def test_mean_baseline_on_event_folders(folder_albums, tmp_path, capsys):
    split = tmp_path / "train.txt"
    split.write_text("\n".join(p.parent.name + "/" + p.name for p in sorted(folder_albums.glob("*/*"))[::2]))
    run = tmp_path / "mean"
    _run(
        capsys, "album", "train", "--recipe", "mean_ml_cufed", "--data", str(folder_albums), "--split", str(split),
        "--out-dir", str(run), *TINY,
    )  # fmt: skip
    loaded = load_album_model(run)
    assert type(loaded.model).__name__ == "MeanOfPredictions" and loaded.classes == PEC_CLASSES
    out = _run(capsys, "album", "validate", "--checkpoint", str(run), "--data", str(folder_albums))
    assert "albums 9 | mAP" in out
    album = sorted(folder_albums.glob(f"{PEC_CLASSES[0]}/*"))[0]
    out = _run(capsys, "album", "infer", str(album), "--checkpoint", str(run))
    assert "top scores:" in out


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
    out = _run(capsys, "album", "convert", str(source), str(target), "--backbone-kwargs", kwargs, *tiny)
    assert "2 events" in out
    loaded = load_album_model(target)
    assert loaded.classes == ["Show", "Zoo"] and loaded.recipe.pos_embed
    images = torch.rand(1, 3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.model(images), reference(images))
    with pytest.raises(SystemExit, match="safetensors"):
        main(["album", "convert", str(source), str(tmp_path / "x.pt"), "--backbone-kwargs", kwargs, *tiny])
