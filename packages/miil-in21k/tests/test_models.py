"""Original ImageNet-21K-P checkpoints (InplaceABN TResNet layout) and 1K initialisation with mismatched heads."""

import re

import pytest
import torch
import torch.nn as nn
from timm.models.tresnet import TResNet

from miil.core.errors import UserError
from miil.core.io import KeyMappingError
from miil.in21k import convert_original_checkpoint, create_in21k_model, load_matching_weights


def _tiny_tresnet(num_classes=10):
    torch.manual_seed(0)
    model = TResNet(layers=[1, 1, 1, 1], num_classes=num_classes, width_factor=0.25).eval()
    with torch.no_grad():  # non-trivial BatchNorm state, positive weights (InplaceABN stores |w| - eps)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_()
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
    return model


def _to_original_layout(model: nn.Module) -> dict:
    """Our TResNet's weights in the released InplaceABN layout: conv2d_ABN = Sequential(conv, InPlaceABN), blocks with
    anti-aliasing wrap it once more (``conv1.0.0`` / ``conv1.0.1``), no num_batches_tracked."""
    aa = {name for name, m in model.named_modules() if getattr(m, "aa", None) is not None}
    out = {}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        match = re.fullmatch(r"(.*)\.(conv|bn)\.(\w+)", key)
        if match is None:
            out[key] = value.clone()
            continue
        owner, part, leaf = match.groups()
        index = "0" if part == "conv" else "1"
        prefix = f"{owner}.0.{index}" if owner in aa else f"{owner}.{index}"
        out[f"{prefix}.{leaf}"] = value - 1e-5 if (part == "bn" and leaf == "weight") else value.clone()
    return {"state_dict": out}


def test_original_tresnet_checkpoint_converts_strictly_to_identical_outputs(tmp_path):
    ours = _tiny_tresnet()
    original = _to_original_layout(ours)
    assert any(".conv1.0.0.weight" in k or ".conv2.0.0.weight" in k for k in original["state_dict"])
    path = tmp_path / "tresnet_miil_21k.pth"
    torch.save(original, path)
    fresh = TResNet(layers=[1, 1, 1, 1], num_classes=10, width_factor=0.25).eval()
    fresh.load_state_dict(convert_original_checkpoint(path, fresh), strict=True)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), ours(x), rtol=1e-4, atol=1e-5)
    broken = {"state_dict": dict(original["state_dict"])}
    broken["state_dict"].pop("head.fc.weight")
    broken["state_dict"]["extra.weight"] = torch.zeros(1)
    with pytest.raises(KeyMappingError, match="head.fc.weight"):
        convert_original_checkpoint(broken, fresh)


def test_timm_layout_checkpoints_load_unchanged():
    model = nn.Sequential(nn.Linear(4, 3))
    state = {"module." + k: v for k, v in model.state_dict().items()}  # DDP-saved
    assert set(convert_original_checkpoint({"state_dict": state}, model)) == {"0.weight", "0.bias"}


def test_1k_initialisation_skips_the_mismatched_head(tmp_path):
    source = _tiny_tresnet(num_classes=1000)
    path = tmp_path / "tresnet_1k.pth"
    torch.save({"state_dict": source.state_dict()}, path)
    target = TResNet(layers=[1, 1, 1, 1], num_classes=21, width_factor=0.25)
    report = load_matching_weights(target, torch.load(path, weights_only=True)["state_dict"])
    assert [k for k, _, _ in report.shape_mismatch] == ["head.fc.weight", "head.fc.bias"]
    assert not report.unexpected and set(report.missing) == {"head.fc.weight", "head.fc.bias"}
    torch.testing.assert_close(target.body.conv1.conv.weight, source.body.conv1.conv.weight)
    assert "skipped 2" in report.summary()


def test_create_in21k_model_with_a_local_checkpoint(tmp_path):
    import timm

    source = timm.create_model("test_resnet", num_classes=1000)
    torch.save(source.state_dict(), tmp_path / "w.pth")
    model, report = create_in21k_model("test_resnet", num_classes=13, init_checkpoint=tmp_path / "w.pth")
    assert model.get_classifier().out_features == 13
    assert len(report.shape_mismatch) == 2 and len(report.loaded) > 10
    torch.save({"x.weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(UserError, match="no tensor"):
        create_in21k_model("test_resnet", num_classes=13, init_checkpoint=tmp_path / "other.pth")
    with pytest.raises(ValueError, match="unknown timm model"):
        create_in21k_model("no_such_net", num_classes=3)
