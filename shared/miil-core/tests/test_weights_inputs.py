"""The helpers behind ``--weights``, ``infer INPUT ...``, converters' BatchNorm counters and ``--amp`` of evaluation."""

import json
import warnings

import pytest
import torch
from torch import nn

from miil.core.data.inputs import ImageFilesDataset, list_inputs
from miil.core.data.unreadable import Skipped, UnreadableFileError, UnreadableFileWarning
from miil.core.errors import UserError
from miil.core.io import fill_missing_bn_counters, remap_state_dict, resolve_weights
from miil.core.testing import write_bad_inputs, write_real_image


def test_fill_missing_bn_counters_adds_only_counters_of_present_norm_layers():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.BatchNorm2d(4))
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    del state["2.running_mean"]  # a norm layer the checkpoint does not hold: its counter is not invented
    filled = fill_missing_bn_counters(state, model)
    assert "1.num_batches_tracked" in filled and "2.num_batches_tracked" not in filled
    assert filled["1.num_batches_tracked"].dtype == torch.long and int(filled["1.num_batches_tracked"]) == 0
    assert "1.num_batches_tracked" not in state  # the input is left alone
    kept = {**state, "1.num_batches_tracked": torch.tensor(7)}
    assert int(fill_missing_bn_counters(kept, model)["1.num_batches_tracked"]) == 7  # a present counter is kept
    # without expected keys: one per running_mean; strictness stays with remap_state_dict
    assert set(fill_missing_bn_counters(state)) - set(state) == {"1.num_batches_tracked"}
    with pytest.raises(KeyError, match="2.running_mean"):
        remap_state_dict(fill_missing_bn_counters(state, model), [(r"(.*)", r"\1")], expected=model)


def test_resolve_weights_run_folder_files_and_sidecars(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "best.safetensors").write_bytes(b"x")
    (run / "best.json").write_text(json.dumps({"epoch": 1}))
    (run / "checkpoints" / "epoch-0002.safetensors").write_bytes(b"x")
    (run / "last.json").write_text(json.dumps({"weights": "checkpoints/epoch-0002.safetensors", "epoch": 2}))
    assert resolve_weights(run) == (run / "best.safetensors", {"epoch": 1})
    assert resolve_weights(run / "best.safetensors")[1] == {"epoch": 1}
    assert resolve_weights(run / "checkpoints" / "epoch-0002.safetensors")[1]["epoch"] == 2
    (tmp_path / "converted.pth").write_bytes(b"x")
    assert resolve_weights(tmp_path / "converted.pth") == (tmp_path / "converted.pth", None)
    with pytest.raises(UserError, match="does not exist"):
        resolve_weights(tmp_path / "nope")
    with pytest.raises(UserError, match="without best.safetensors"):
        resolve_weights(tmp_path)
    (run / "best.json").write_text("{broken")
    with pytest.raises(UserError, match="not valid JSON"):
        resolve_weights(run)


def test_list_inputs_and_image_files_dataset(tmp_path):
    good = write_real_image(tmp_path / "photos" / "a.jpg")
    write_real_image(tmp_path / "photos" / "sub" / "b.png", index=1)
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    bad = write_bad_inputs(tmp_path / "bad", good=good)
    files = list_inputs([tmp_path / "photos", *bad.values()])
    assert files[:2] == [good, tmp_path / "photos" / "sub" / "b.png"] and files[2:] == list(bad.values())
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x")
    with pytest.raises(UserError, match="docs holds no files"):
        list_inputs([tmp_path / "docs"])
    # a folder named like an image stands where a file belongs: kept as one input, for its reader to report
    assert list_inputs([tmp_path / "photos" / "sub", bad["folder"]])[1] == bad["folder"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnreadableFileWarning)
        ds = ImageFilesDataset(files, lambda img: img.size)
        samples = [ds[i] for i in range(len(ds))]
    assert samples[0] == ((64, 64), 0)
    reasons = {s.file: s.reason for s in samples[2:]}
    assert all(isinstance(s, Skipped) for s in samples[2:]) and reasons[str(bad["missing"])] == "missing"
    with pytest.raises(UnreadableFileError):
        ImageFilesDataset(files[2:], strict=True)[0]


def test_recipes_verb_takes_a_describer(capsys):
    from miil.core.cli import ArgumentParser
    from miil.core.cli_args import add_recipes_verb

    parser = ArgumentParser(prog="miil x")
    sub = parser.add_subparsers()
    add_recipes_verb(sub, {"row-a": 1, "row-b": 2}, describe=lambda r: f"value {r}")
    args = parser.parse_args(["recipes"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.splitlines() == ["row-a  value 1", "row-b  value 2"]
