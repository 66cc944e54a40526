"""The HardCoRe-NAS converters against the key layouts the original code builds (issue 17, item 3).

``original_keys/*.txt`` list the state dicts of Alibaba-MIIL/HardCoReNAS @a940eb7 (its timm fork): the one-shot
supernet ``MobileNasNet`` with the defaults of the multipath stage (``w_star``), the heaviest ``MobileNetV3``
(``w_heaviest``) and the published child "A" built from its architecture string (see each file's header).
Placeholder tensors of those shapes go through our public converters, from the ``CheckpointSaver`` files the
original writes (``state_dict`` and ``state_dict_ema``, no ``module.``) and with a ``module.`` prefix.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from miil.core.key_lists import check_conversion, placeholder_state_dict, read_key_list
from miil.hardcore import (
    HardCoReSupernet,
    SearchSpace,
    build_child,
    convert_original_checkpoint,
    convert_original_child,
    convert_original_supernet,
    detect_original_layout,
    infer_child_architecture,
    original_state_dict,
    resolve_architecture,
    supernet_from_heaviest,
)

LISTS = Path(__file__).parent / "original_keys"
SPACE = SearchSpace()
_ARCH_VARIABLES = re.compile(r"blocks\.\d+\.\d+\._alpha|beta\.\d+")
# our supernet holds one SE per expansion; the original's single (largest) SE becomes ours at the last index and the
# smaller ones are its slices
_DERIVED_SE = re.compile(rf"stages\.\d+\.\d+\.se\.(?!{len(SPACE.expansions) - 1}\.).*")


def _supernet_source(prefix: str = "") -> tuple[dict, dict]:
    listed = read_key_list(LISTS / "mobilenasnet_supernet.txt")
    # alpha / beta are read into numpy arrays: real (uniform) values, the rest shapes only
    fill = {prefix + k: torch.ones(s) / s[0] for k, s in listed.shapes.items() if _ARCH_VARIABLES.fullmatch(k)}
    return listed.shapes, placeholder_state_dict(listed.with_prefix(prefix), fill=fill)


@pytest.mark.parametrize("entry", ["state_dict", "state_dict_ema", "module"])
def test_supernet_converts_one_for_one(entry):
    shapes, source = _supernet_source("module." if entry == "module" else "")
    checkpoint = {"epoch": 99, "arch": "mobilenasnet", "version": 2, "metric": 75.0}
    checkpoint["state_dict"] = checkpoint["state_dict_ema"] = source
    state = original_state_dict(checkpoint, use_ema=entry == "state_dict_ema")
    assert detect_original_layout(state) == "supernet"
    result = convert_original_supernet(state, SPACE)
    assert result.num_classes == 1000 and result.architecture(SPACE) is None  # uniform alpha/beta: no argmax
    assert result.alpha.shape == SPACE.alpha_shape and result.beta.shape == SPACE.beta_shape
    with torch.device("meta"):
        model = HardCoReSupernet(SPACE, num_classes=1000)
    dropped = [k for k in shapes if _ARCH_VARIABLES.fullmatch(k)]
    assert len(dropped) == SPACE.num_stages * (SPACE.max_depth + 1)
    added = [k for k in model.state_dict() if _DERIVED_SE.fullmatch(k)]
    check_conversion(shapes, result.state_dict, model, dropped=dropped, added=added)


@pytest.mark.parametrize("name,arch", [("mobilenasnet_heaviest", None), ("hardcorenas_a_child", "hardcorenas_a")])
def test_children_convert_one_for_one(name, arch):
    listed = read_key_list(LISTS / f"{name}.txt")
    source = placeholder_state_dict(listed)
    assert detect_original_layout(source) == "child"
    expected = SPACE.heaviest() if arch is None else resolve_architecture(SPACE, arch)
    assert infer_child_architecture(source, SPACE) == expected
    converted, found = convert_original_child(source, SPACE)
    assert found == expected
    with torch.device("meta"):
        model = build_child(SPACE, found, num_classes=1000)
    check_conversion(listed.shapes, converted, model)


def test_heaviest_embeds_into_a_supernet():
    listed = read_key_list(LISTS / "mobilenasnet_heaviest.txt")
    result = supernet_from_heaviest(placeholder_state_dict(listed, device="cpu"), SPACE)
    model = HardCoReSupernet(SPACE, num_classes=1000)
    # the other kernels' depthwise convs are the only weights the heaviest network does not hold
    assert result.initialised and all(
        re.fullmatch(r"stages\.\d+\.\d+\.conv_dw\.\d+\.weight", k) for k in result.initialised
    )
    check_conversion(list(result.state_dict), result.state_dict, model)


def test_checkpoint_saver_file_to_safetensors(tmp_path):
    listed = read_key_list(LISTS / "mobilenasnet_heaviest.txt")
    source = placeholder_state_dict(listed, device="cpu")
    src = tmp_path / "model_best.pth.tar"
    # CheckpointSaver also writes 'args' (an argparse.Namespace), which a weights-only load refuses by design.
    torch.save({"epoch": 299, "arch": "mobilenasnet", "state_dict": source, "state_dict_ema": source}, src)
    dst, meta = convert_original_checkpoint(src, tmp_path / "heaviest.safetensors", space=SPACE, use_ema=True)
    assert meta["kind"] == "child" and meta["num_classes"] == 1000 and dst.exists()
