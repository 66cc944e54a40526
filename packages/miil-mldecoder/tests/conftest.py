"""Fixtures: run timm's ML-Decoder on current PyTorch, write our weights in the original repo's layout, and the
miniature COCO-2014, OpenImages V6, VOC2007 and NUS-WIDE copies (``miil.core.miniature``,
``miil.mldecoder.miniature``)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch
from timm.layers.ml_decoder import MLDecoder as TimmMLDecoder

from miil.core.miniature import make_coco2014, make_openimages
from miil.mldecoder.miniature import make_nus_wide, make_voc2007


def runnable_timm(module: TimmMLDecoder) -> TimmMLDecoder:
    """Let timm's ML-Decoder run on PyTorch >= 2.1 without changing its weights or its math.

    ``nn.TransformerDecoder`` now reads ``layers[0].self_attn`` and passes ``tgt_is_causal`` / ``memory_is_causal``;
    timm's layer has neither. The attribute is set outside ``_modules`` (no new state-dict keys) and the two extra
    arguments are dropped.
    """
    layer = module.decoder.layers[0]
    object.__setattr__(layer, "self_attn", layer.multihead_attn)
    forward = type(layer).forward

    def patched(self, tgt, memory, tgt_is_causal=None, memory_is_causal=False, **kwargs):
        return forward(self, tgt, memory, **kwargs)

    layer.forward = types.MethodType(patched, layer)
    return module


_TO_ORIGINAL = [
    ("proj.", "decoder.embed_standart."),
    ("layer.attn.out_proj.", "decoder.layers.0.multihead_attn.out_proj."),
    ("layer.attn.", "decoder.layers.0.multihead_attn."),
    ("layer.fc1.", "decoder.layers.0.linear1."),
    ("layer.fc2.", "decoder.layers.0.linear2."),
    ("layer.norm", "decoder.layers.0.norm"),
    ("group_fc.weight", "decoder.duplicate_pooling"),
    ("group_fc.bias", "decoder.duplicate_pooling_bias"),
    ("query_embed", "decoder.query_embed.weight"),
    ("word_proj.", "wordvec_proj."),
    ("weight", "decoder.duplicate_pooling"),
    ("bias", "decoder.duplicate_pooling_bias"),
]


def to_original_layout(head_state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """Our head's state dict with the key names of Alibaba-MIIL/ML_Decoder (``src_files/ml_decoder``)."""
    out = {}
    for key, value in head_state.items():
        for ours, theirs in _TO_ORIGINAL:
            if key.startswith(ours):
                out[prefix + theirs + key[len(ours) :]] = value.clone()
                break
        else:
            raise KeyError(f"no original name for {key}")
    return out


@pytest.fixture
def timm_runnable():
    return runnable_timm


@pytest.fixture
def original_layout():
    return to_original_layout


@pytest.fixture(autouse=True)
def _single_thread():
    """The test models are tiny: one thread is about as fast, and does not collapse when other jobs share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def coco_root(tmp_path_factory) -> Path:
    """Miniature COCO-2014: ``train2014/``, ``val2014/``, ``annotations/instances_*2014.json``."""
    return make_coco2014(tmp_path_factory.mktemp("miniature") / "coco")


@pytest.fixture(scope="session")
def openimages_root(tmp_path_factory) -> Path:
    """Miniature OpenImages V6 release (8 train, 4 validation images: one training step of the tiny recipe)."""
    return make_openimages(tmp_path_factory.mktemp("miniature") / "openimages", train_images=8, val_images=4)


@pytest.fixture(scope="session")
def voc_root(tmp_path_factory) -> Path:
    """Miniature VOC2007 devkit; the loaders' root is ``voc_root / "VOCdevkit" / "VOC2007"``."""
    return make_voc2007(tmp_path_factory.mktemp("miniature") / "voc")


@pytest.fixture(scope="session")
def nus_root(tmp_path_factory) -> Path:
    """Miniature NUS-WIDE zero-shot set: ``Flickr/``, ``data.csv``, ``benchmark_81_v0.json``, ``wordvec_array.pth``."""
    return make_nus_wide(tmp_path_factory.mktemp("miniature") / "nus_wide")
