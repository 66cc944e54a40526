"""The self-supervised weight converter against the key layouts the DINO code builds (issue 17, item 3).

The paper's own SSL checkpoints are not public; the converter targets DINO's releases. ``original_keys/dino_*.txt``
list the state dicts of facebookresearch/dino @7c446df: the "backbone only" ViT-S/16 and ResNet-50 files (hubconf.py)
and the teacher of a full ``main_dino.py`` checkpoint (``MultiCropWrapper(backbone, DINOHead)``; see each file's
header). Placeholder tensors of those shapes go through our public functions: the backbone files directly, and the
full checkpoints as ``main_dino.py`` saves them (``student`` always, and a ResNet's ``teacher`` too, wrapped in DDP:
``module.`` prefixes). Every backbone key must fill our timm model; only its new classifier keeps its initialisation.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

from miil.core.key_lists import check_conversion, placeholder_state_dict, read_key_list
from miil.diversity import classifier_keys, convert_ssl_state_dict, load_ssl_weights

LISTS = Path(__file__).parent / "original_keys"
TIMM = {"vits16": "vit_small_patch16_224", "resnet50": "resnet50"}


def _target(arch: str) -> torch.nn.Module:
    with torch.device("meta"):
        return timm.create_model(TIMM[arch], num_classes=10)


@pytest.mark.parametrize("arch", sorted(TIMM))
def test_backbone_release_converts_one_for_one(arch):
    listed = read_key_list(LISTS / f"dino_{arch}_pretrain.txt")
    model = _target(arch)
    converted = convert_ssl_state_dict(placeholder_state_dict(listed), model)
    fresh = classifier_keys(model)
    assert fresh == (["head.weight", "head.bias"] if arch == "vits16" else ["fc.weight", "fc.bias"])
    own = model.state_dict()
    check_conversion(listed.shapes, {**converted, **{k: own[k] for k in fresh}}, model, added=fresh)


@pytest.mark.parametrize("arch", sorted(TIMM))
def test_full_checkpoint_uses_the_teacher(tmp_path, arch):
    listed = read_key_list(LISTS / f"dino_{arch}_full_teacher.txt")
    teacher_prefix = "module." if arch == "resnet50" else ""  # DDP wraps the teacher only when it has batch norms
    path = tmp_path / "checkpoint.pth"
    # main_dino.py also saves 'args' (an argparse.Namespace), which a weights-only load refuses by design.
    saved = {
        "student": placeholder_state_dict(listed.with_prefix("module.")),
        "teacher": placeholder_state_dict(listed.with_prefix(teacher_prefix)),
        "epoch": 100,
        "dino_loss": {"center": torch.zeros(1, 65536, device="meta")},
    }
    torch.save(saved, path)
    model = _target(arch)
    assert load_ssl_weights(model, path) == sorted(classifier_keys(model))
    projection = [k for k in listed.shapes if k.startswith("head.")]
    assert len(projection) == 8  # DINOHead: mlp.0 / .2 / .4 weights and biases, last_layer.weight_g / weight_v
    check_conversion(listed.shapes, model.state_dict(), model, dropped=projection, added=classifier_keys(model))


def test_student_keys_convert_too():
    listed = read_key_list(LISTS / "dino_vits16_full_teacher.txt")
    model = _target("vits16")
    converted = convert_ssl_state_dict(placeholder_state_dict(listed.with_prefix("module.")), model)
    fresh = classifier_keys(model)
    projection = [k for k in listed.shapes if k.startswith("head.")]
    own = model.state_dict()
    full = {**converted, **{k: own[k] for k in fresh}}
    check_conversion(listed.shapes, full, model, dropped=projection, added=fresh)
