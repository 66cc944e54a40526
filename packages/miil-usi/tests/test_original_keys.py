"""The InplaceABN TResNet converter against the key layouts the original code builds (issue 17, item 3).

``original_keys/usi_*.txt`` list the state dicts of Alibaba-MIIL/Solving_ImageNet @31af67a: its timm 0.5.4 copy's
``tresnet_l_v2`` (the KD teacher ``tresnet_l_v2_83_9.pth``) and ``tresnet_m``, built from conv + ``InplaceAbn`` pairs
(see each file's header). Placeholder tensors of those shapes go through our public converter: directly, from the
``{"state_dict": ...}`` files its checkpoint saver writes (the EMA's weights land in the same entry), with a
``module.`` prefix, and with the ``num_batches_tracked`` counters that TResNets built on inplace_abn >= 1.1 carry.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

from miil.core.key_lists import check_conversion, placeholder_state_dict, read_key_list
from miil.usi import convert_inplace_abn_tresnet, is_inplace_abn_tresnet, load_weights

LISTS = Path(__file__).parent / "original_keys"
CASES = {"usi_tresnet_l_v2": "tresnet_v2_l", "usi_tresnet_m": "tresnet_m"}


def _target(name: str) -> torch.nn.Module:
    with torch.device("meta"):
        return timm.create_model(CASES[name], num_classes=1000)


def _counters(keys) -> list[str]:
    return [k for k in keys if k.endswith("num_batches_tracked")]


@pytest.mark.parametrize("name", sorted(CASES))
def test_listed_layout_converts_one_for_one(name):
    listed = read_key_list(LISTS / f"{name}.txt")
    source = placeholder_state_dict(listed)
    assert is_inplace_abn_tresnet(source)
    model = _target(name)
    converted = convert_inplace_abn_tresnet(source, model)
    check_conversion(listed.shapes, converted, model, added=_counters(model.state_dict()))


def test_inplace_abn_1_1_counters_are_dropped_and_remade():
    listed = read_key_list(LISTS / "usi_tresnet_m.txt")
    shapes = dict(listed.shapes)
    for key in listed.shapes:
        if key.endswith(".running_mean"):
            shapes[key[: -len("running_mean")] + "num_batches_tracked"] = ()
    model = _target("usi_tresnet_m")
    converted = convert_inplace_abn_tresnet(placeholder_state_dict(shapes), model)
    check_conversion(shapes, converted, model, dropped=_counters(shapes), added=_counters(model.state_dict()))


@pytest.mark.parametrize("prefix", ["", "module."])
def test_checkpoint_saver_file(tmp_path, prefix):
    listed = read_key_list(LISTS / "usi_tresnet_l_v2.txt")
    path = tmp_path / "model_best.pth.tar"
    # CheckpointSaverUSI also stores 'args' (an argparse.Namespace), which a weights-only load refuses by design.
    saved = {"epoch": 299, "arch": "tresnet_l_v2", "version": 2, "metric": 83.9}
    torch.save({**saved, "state_dict": placeholder_state_dict(listed.with_prefix(prefix))}, path)
    model = load_weights(_target("usi_tresnet_l_v2"), path)
    check_conversion(listed.shapes, model.state_dict(), model, added=_counters(model.state_dict()))
