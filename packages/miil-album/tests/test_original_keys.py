"""The PETA converter against the key layout the original code builds (issue 17, item 3).

``original_keys/peta_mtresnet_aggregate_32.txt`` lists the state dict of Alibaba-MIIL/PETA @a42bfed's
``MTResnetAggregate`` (TResNet-M body on inplace_abn v1.0.12, ``head.fc``, and the ``aggregate.`` transformer; see the
file's header). Placeholder tensors of those shapes go through our public converter, as the released ``peta_32.pth``
(``{"model": ..., "idx_to_class": ...}``), with a ``module.`` prefix, and into a model without a position embedding
(``--transformers_pos 0``: the stored ``pos_embed`` is then dropped on purpose). Only public functions are used, so
the test does not depend on where the aggregator module lives. The ``aggregate.`` lines of the list are the
aggregator alone, for a standalone aggregator converter.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from miil.album import PETA, convert_peta_state_dict, load_peta_checkpoint
from miil.core.key_lists import check_conversion, placeholder_state_dict, read_key_list

LIST = Path(__file__).parent / "original_keys" / "peta_mtresnet_aggregate_32.txt"


def _target(pos_embed: bool) -> PETA:
    with torch.device("meta"):
        return PETA("tresnet_m", num_classes=23, pos_embed=pos_embed, max_images=32)


def _counters(keys) -> list[str]:
    return [k for k in keys if k.endswith("num_batches_tracked")]


def test_released_file_converts_one_for_one(tmp_path):
    listed = read_key_list(LIST)
    assert not _counters(listed.shapes)  # inplace_abn v1.0.12
    path = tmp_path / "peta_32.pth"
    events = {i: f"event{i}" for i in range(23)}
    torch.save({"model": placeholder_state_dict(listed), "idx_to_class": events}, path)
    model = _target(pos_embed=True)
    assert load_peta_checkpoint(path, model) == [f"event{i}" for i in range(23)]
    check_conversion(listed.shapes, model.state_dict(), model, added=_counters(model.state_dict()))


@pytest.mark.parametrize("pos_embed", [True, False])
def test_state_dict_with_and_without_position_embedding(pos_embed):
    listed = read_key_list(LIST)
    model = _target(pos_embed)
    converted = convert_peta_state_dict(placeholder_state_dict(listed), model)
    dropped = [] if pos_embed else ["aggregate.pos_embed"]
    check_conversion(listed.shapes, converted, model, dropped=dropped, added=_counters(model.state_dict()))


def test_module_prefix():
    listed = read_key_list(LIST)
    model = _target(pos_embed=True)
    assert load_peta_checkpoint({"model": placeholder_state_dict(listed.with_prefix("module."))}, model) is None
    check_conversion(listed.shapes, model.state_dict(), model, added=_counters(model.state_dict()))


def test_inplace_abn_1_1_counters():
    listed = read_key_list(LIST)
    shapes = dict(listed.shapes)
    for key in listed.shapes:
        if key.endswith(".running_mean"):
            shapes[key[: -len("running_mean")] + "num_batches_tracked"] = ()
    model = _target(pos_embed=True)
    check_conversion(shapes, convert_peta_state_dict(placeholder_state_dict(shapes), model), model)
