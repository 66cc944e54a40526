"""The ImageNet-21K-P checkpoint converter against the key layouts the original code builds (issue 17, item 3).

``original_keys/in21k_*.txt`` list the state dicts of Alibaba-MIIL/ImageNet21K @6e4c6a4 for TResNet-M and
TResNet-L v2 with 11,221 classes, built by its own ``tresnet.py`` with inplace_abn v1.0.12 (see each file's header).
Placeholder tensors of those shapes go through our public converter as the released ``{"state_dict": ...}`` files
(also with a ``module.`` prefix, and with the ``num_batches_tracked`` counters of inplace_abn >= 1.1).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

from miil.core.key_lists import check_conversion, placeholder_state_dict, read_key_list
from miil.in21k import convert_original_checkpoint

LISTS = Path(__file__).parent / "original_keys"
CASES = {"in21k_tresnet_m": "tresnet_m", "in21k_tresnet_l_v2": "tresnet_v2_l"}


def _target(name: str) -> torch.nn.Module:
    with torch.device("meta"):
        return timm.create_model(CASES[name], num_classes=11221)


def _counters(keys) -> list[str]:
    return [k for k in keys if k.endswith("num_batches_tracked")]


@pytest.mark.parametrize("name", sorted(CASES))
def test_released_file_converts_one_for_one(tmp_path, name):
    listed = read_key_list(LISTS / f"{name}.txt")
    path = tmp_path / f"{name}_miil_21k.pth"
    torch.save({"state_dict": placeholder_state_dict(listed)}, path)
    model = _target(name)
    check_conversion(
        listed.shapes, convert_original_checkpoint(path, model), model, added=_counters(model.state_dict())
    )


def test_module_prefix_and_inplace_abn_1_1_counters():
    listed = read_key_list(LISTS / "in21k_tresnet_m.txt")
    shapes = dict(listed.shapes)
    for key in listed.shapes:
        if key.endswith(".running_mean"):
            shapes[key[: -len("running_mean")] + "num_batches_tracked"] = ()
    model = _target("in21k_tresnet_m")
    source = placeholder_state_dict({f"module.{k}": v for k, v in shapes.items()})
    check_conversion(shapes, convert_original_checkpoint({"state_dict": source}, model), model)
