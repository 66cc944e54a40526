"""The CSL / ASL TResNet converter against the key layouts the original code builds (issue 17, item 3).

``original_keys/*.txt`` list the state dicts of Alibaba-MIIL/PartialLabelingCSL @534f3ce (TResNet-M, linear and
OpenImages bottleneck heads) and Alibaba-MIIL/ASL @8c9e0bd (TResNet-L v1 with the bottleneck head of the released
OpenImages model), as their own model code builds them with inplace_abn v1.0.12 (see each file's header). Placeholder
tensors of those shapes go through our public converter in every form the originals write or could write: the bare
``state_dict()`` of ``train.py``, the released ``{"model", "num_classes", "idx_to_class"}`` file, the same with
InplaceABN >= 1.1's ``num_batches_tracked`` counters, and ``ModelEma.state_dict()`` (``module.`` prefix).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from miil.core.key_lists import check_conversion, placeholder_state_dict, read_key_list
from miil.csl import convert_original_checkpoint, create_csl_model, load_original_checkpoint

LISTS = Path(__file__).parent / "original_keys"

# list -> (timm TResNet of the same architecture, classes, bottleneck width)
CASES = {
    "csl_tresnet_m_coco": ("tresnet_m", 80, None),
    "csl_tresnet_m_openimages": ("tresnet_m", 9605, 512),
    "asl_tresnet_l_openimages": ("tresnet_l", 9605, 512),
}


def _target(name: str):
    arch, classes, bottleneck = CASES[name]
    with torch.device("meta"):
        return create_csl_model(arch, num_classes=classes, bottleneck_features=bottleneck)


def _counters(keys) -> list[str]:
    return [k for k in keys if k.endswith("num_batches_tracked")]


def _with_abn_counters(shapes: dict) -> dict:
    # inplace_abn >= 1.1 adds num_batches_tracked to every ABN (the layers with running_mean here).
    out = {}
    for key, shape in shapes.items():
        out[key] = shape
        if key.endswith(".running_mean"):
            out[key[: -len("running_mean")] + "num_batches_tracked"] = ()
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_listed_layout_converts_one_for_one(name):
    listed = read_key_list(LISTS / f"{name}.txt")
    assert not _counters(listed.shapes)  # inplace_abn v1.0.12 keeps none
    model = _target(name)
    converted = convert_original_checkpoint(placeholder_state_dict(listed), model)
    check_conversion(listed.shapes, converted, model, added=_counters(model.state_dict()))


@pytest.mark.parametrize("name", sorted(CASES))
def test_inplace_abn_1_1_counters(name):
    shapes = _with_abn_counters(read_key_list(LISTS / f"{name}.txt").shapes)
    model = _target(name)
    assert len(_counters(shapes)) == len(_counters(model.state_dict()))
    check_conversion(shapes, convert_original_checkpoint(placeholder_state_dict(shapes), model), model)


def test_ema_state_dict_has_module_prefix():
    listed = read_key_list(LISTS / "csl_tresnet_m_coco.txt")
    model = _target("csl_tresnet_m_coco")
    converted = convert_original_checkpoint(placeholder_state_dict(listed.with_prefix("module.")), model)
    check_conversion(listed.shapes, converted, model, added=_counters(model.state_dict()))


def test_released_file_loads(tmp_path):
    listed = read_key_list(LISTS / "asl_tresnet_l_openimages.txt")
    names = {i: f"'/m/{i:05d}'" for i in range(9605)}
    path = tmp_path / "Open_ImagesV6_TRresNet_L_448.pth"
    torch.save({"model": placeholder_state_dict(listed), "num_classes": 9605, "idx_to_class": names}, path)
    with torch.device("meta"):
        model, classes = load_original_checkpoint(path, model="tresnet_l")
    assert classes[:2] == ["/m/00000", "/m/00001"] and len(classes) == 9605
    assert model.head.embedding.out_features == 512 and model.head.fc.out_features == 9605
    check_conversion(listed.shapes, model.state_dict(), model, added=_counters(model.state_dict()))
