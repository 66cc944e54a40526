"""miil.core.verbs: the options of add_eval_args applied to evaluate, image inputs under the bad-input contract, the
report and exit status of a validate / infer verb."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
import torch.nn as nn
from PIL import Image
from torchvision.transforms import functional as tvf

from miil.core import cli_args as ca
from miil.core.data.unreadable import Skipped
from miil.core.errors import EXIT_OK, EXIT_SKIPPED_INPUTS
from miil.core.testing import write_bad_inputs, write_image_folder


def _parse(argv):
    parser = argparse.ArgumentParser(prog="miil demo infer")
    parser.add_argument("inputs", nargs="+")
    ca.add_eval_args(parser, batch_size=3)
    return parser.parse_args(argv)


def _transform(image):
    return tvf.to_tensor(image.resize((8, 8)))


class _MeanColour(nn.Module):
    """The mean of each channel: an output that a test can compute from the image itself."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return x.mean(dim=(2, 3)) * self.scale


def test_add_eval_args_gives_the_verb_options():
    args = _parse(["x.jpg"])
    assert (args.batch_size, args.amp, args.strict, args.json) == (3, None, False, None)  # amp None: the run's own
    assert {"num_workers", "device", "progress", "amp_dtype"} <= set(vars(args))
    args = _parse(["x.jpg", "--amp", "false", "--strict", "--json", "r.json", "--amp-dtype", "bfloat16"])
    assert (args.amp, args.strict, args.json, args.amp_dtype) == (False, True, "r.json", "bfloat16")


def test_predict_images_skips_bad_inputs_and_finish_reports_them(tmp_path, capsys):
    from miil.core.verbs import finish, predict_images

    good = write_image_folder(tmp_path / "good", classes=("a",), per_class=4, max_side=40)
    bad = write_bad_inputs(tmp_path / "bad", good=next(p for p in good if p.suffix == ".jpg"))
    inputs = [str(good[0]), str(bad["truncated"]), str(good[1]), str(bad["missing"]), str(good[2])]
    report_file = tmp_path / "report.json"
    args = _parse([*inputs, "--progress", "false", "--json", str(report_file)])
    model = _MeanColour()
    files, outputs, index, report = predict_images(args, model, _transform, stored_precision=None)

    assert [str(f) for f in files] == inputs
    assert index == [0, 2, 4]  # the readable inputs, in input order
    expected = torch.stack([_transform(Image.open(files[i]).convert("RGB")) for i in index])
    torch.testing.assert_close(outputs, expected.mean(dim=(2, 3)))
    assert report.samples == 3 and report.precision == "fp32"
    assert {s.file for s in report.skipped} == {str(bad["truncated"]), str(bad["missing"])}

    status = finish("miil demo infer", report, str(report_file), {"predictions": index})
    assert status == EXIT_SKIPPED_INPUTS
    out = capsys.readouterr().out
    assert "miil demo infer: skipped 2 unreadable input(s)" in out
    data = json.loads(report_file.read_text())
    assert data["predictions"] == [0, 2, 4] and data["samples"] == 3
    assert sorted(d["file"] for d in data["skipped"]) == sorted([str(bad["truncated"]), str(bad["missing"])])
    assert all(d["reason"] for d in data["skipped"])


def test_predict_images_strict_stops_at_the_first_bad_input(tmp_path):
    from miil.core.data.unreadable import UnreadableFileError
    from miil.core.verbs import predict_images

    good = write_image_folder(tmp_path / "good", classes=("a",), per_class=1, max_side=40)
    bad = write_bad_inputs(tmp_path / "bad")
    args = _parse([str(good[0]), str(bad["empty"]), "--progress", "false", "--strict"])
    with pytest.raises(UnreadableFileError, match="empty"):
        predict_images(args, _MeanColour(), _transform, stored_precision=None)


def test_run_evaluation_keeps_the_stored_precision_unless_amp_says_otherwise(tmp_path):
    from miil.core.verbs import run_evaluation

    data = [(torch.rand(3, 8, 8), i) for i in range(4)]
    model = _MeanColour()
    assert run_evaluation(_parse(["x", "--progress", "false"]), model, data, stored_precision="bf16").precision == (
        "bf16"
    )
    args = _parse(["x", "--progress", "false", "--amp", "false"])
    assert run_evaluation(args, model, data, stored_precision="bf16").precision == "fp32"
    assert run_evaluation(_parse(["x", "--progress", "false"]), model, data, stored_precision=None).precision == (
        "fp32"
    )


def test_finish_without_evaluation_reports_skipped_inputs_only(tmp_path, capsys):
    from miil.core.verbs import finish

    assert finish("miil demo train", []) == EXIT_OK
    assert capsys.readouterr().out == ""
    report_file = tmp_path / "r.json"
    status = finish("miil demo train", [Skipped("a.jpg", "empty file")], str(report_file), {"metric": float("nan")})
    assert status == EXIT_SKIPPED_INPUTS
    assert json.loads(report_file.read_text()) == {
        "metric": None,
        "skipped": [{"file": "a.jpg", "reason": "empty file"}],
    }
