"""The ML-Decoder converter against the key layout the original code builds (issue 17, item 3).

``original_keys/ml_decoder_*.txt`` list the state dict of Alibaba-MIIL/ML_Decoder @8a9e984 as its own model code
builds it (TResNet with InplaceABN + ``MLDecoder``; see each file's header). Placeholder tensors of those shapes go
through our public converter, in every form the original scripts write or could write: the bare ``state_dict()`` of
``train.py``, the released ``{"model": ...}`` file, the same without InplaceABN's ``num_batches_tracked`` (inplace_abn
< 1.1) and ``ModelEma.state_dict()`` (``module.`` prefix). Each must fill every key of our model, one for one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from miil.core.key_lists import check_conversion, placeholder_state_dict, read_key_list
from miil.mldecoder import convert_state_dict, create_model, head_config, load_converted

LISTS = Path(__file__).parent / "original_keys"

# list -> (timm backbone of the same architecture, head_config the list must yield)
CASES = {
    "ml_decoder_tresnet_l_coco": (
        "tresnet_v2_l",
        dict(zero_shot=False, num_classes=80, num_groups=80, embed_dim=768, ffn_dim=2048, in_features=2048),
    ),
    "ml_decoder_tresnet_m_openimages": (
        "tresnet_m",
        dict(zero_shot=False, num_classes=9605, num_groups=200, embed_dim=768, ffn_dim=2048, in_features=2048),
    ),
    "ml_decoder_tresnet_l_nus_zsl": (
        "tresnet_v2_l",
        dict(zero_shot=True, num_classes=0, num_groups=0, embed_dim=768, ffn_dim=2048, in_features=2048, word_dim=300),
    ),
}


def _target(name: str, config: dict) -> torch.nn.Module:
    backbone, _ = CASES[name]
    with torch.device("meta"):
        if config["zero_shot"]:
            return create_model(backbone, head="zero_shot", word_dim=config["word_dim"])
        return create_model(backbone, config["num_classes"], num_groups=config["num_groups"])


def _counters(keys) -> list[str]:
    return [k for k in keys if k.endswith("num_batches_tracked")]


@pytest.mark.parametrize("name", sorted(CASES))
def test_listed_layout_converts_one_for_one(name):
    listed = read_key_list(LISTS / f"{name}.txt")
    source = placeholder_state_dict(listed)
    config = head_config(source)
    assert config == CASES[name][1]
    model = _target(name, config)
    check_conversion(listed.shapes, convert_state_dict(source, model), model)


@pytest.mark.parametrize("name", sorted(CASES))
def test_inplace_abn_before_1_1_has_no_counters(name):
    # inplace_abn v1.0.12 (pinned by ASL, on which these models build) registers no num_batches_tracked.
    listed = read_key_list(LISTS / f"{name}.txt")
    old = {k: v for k, v in listed.shapes.items() if not k.endswith("num_batches_tracked")}
    model = _target(name, head_config(placeholder_state_dict(old)))
    converted = convert_state_dict(placeholder_state_dict(old), model)
    added = _counters(model.state_dict())
    assert len(added) == len(_counters(listed.shapes)) > 0
    check_conversion(old, converted, model, added=added)


@pytest.mark.parametrize("wrap", ["release", "ema_module"])
def test_checkpoint_files_as_the_original_writes_them(tmp_path, wrap):
    name = "ml_decoder_tresnet_m_openimages"
    listed = read_key_list(LISTS / f"{name}.txt")
    state = placeholder_state_dict(listed)
    if wrap == "release":
        saved = {"model": state, "num_classes": 9605, "idx_to_class": {0: "/m/011k07"}}
    else:
        saved = {f"module.{k}": v for k, v in state.items()}
    path = tmp_path / "orig.pth"
    torch.save(saved, path)  # meta tensors: the file holds the layout, not the weights
    model = _target(name, CASES[name][1])
    load_converted(model, path)
    check_conversion(listed.shapes, model.state_dict(), model)
