"""The STAM converter against the key layout the original code builds (issue 17, item 3).

``original_keys/stam_16.txt`` lists the state dict of Alibaba-MIIL/STAM @6749baf's ``STAM_224`` for ``stam_16``
(ViT-B/16 with the temporal transformer under ``aggregate.``; see the file's header). Placeholder tensors of those
shapes go through our public converter as the released ``{"model": ...}`` file, with a ``module.`` prefix, and into
models of other clip lengths (the temporal position embedding is resized). Only public functions are used, so the
test does not depend on where the temporal aggregator lives. The ``aggregate.`` lines of the list are the aggregator
alone, for a standalone aggregator converter.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from miil.core.key_lists import check_conversion, placeholder_state_dict, read_key_list
from miil.stam import convert_original_checkpoint, create_stam

LIST = Path(__file__).parent / "original_keys" / "stam_16.txt"


def _target(name: str = "stam_16") -> torch.nn.Module:
    with torch.device("meta"):
        return create_stam(name, num_classes=400)


@pytest.mark.parametrize("prefix", ["", "module."])
def test_released_file_converts_one_for_one(tmp_path, prefix):
    listed = read_key_list(LIST)
    path = tmp_path / "stam_16.pth"
    torch.save({"model": placeholder_state_dict(listed.with_prefix(prefix))}, path)
    checkpoint = torch.load(path, weights_only=True)
    model = _target()
    check_conversion(listed.shapes, convert_original_checkpoint(checkpoint, model), model)


def test_other_clip_length_resizes_the_temporal_position_embedding():
    listed = read_key_list(LIST)
    # resizing interpolates real values: the position embedding is a real tensor, the rest shapes only
    source = placeholder_state_dict(listed, fill={"aggregate.pos_embed": torch.randn(1, 17, 768)})
    model = _target("stam_64")
    converted = convert_original_checkpoint({"model": source}, model)
    assert tuple(converted["temporal.pos_embed"].shape) == (1, 65, 768)
    check_conversion(listed.shapes, converted, model)
