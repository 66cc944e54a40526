"""The EAT converter against the key layouts the original code builds (issue 17, item 3).

``original_keys/eat_*.txt`` list the state dicts of Alibaba-MIIL/AudioClassfication @6277e5e's ``SoundNetRaw`` for
the README's ESC-50 (EAT-S), AudioSet (EAT-M, trained with ``--use_dp``) and SpeechCommands runs (see each file's
header). Placeholder tensors of those shapes, with the fixed triangular blur the original registers in its
``AADownsample.filt`` buffers (the converter verifies them), go through our public functions: the model size read
from the keys, the conversion, and ``best_model.pt`` / ``chkpnt.pt`` files as ``trainer.py`` writes them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from miil.audio import EAT, config_from_original, convert_original_state_dict, load_original_checkpoint
from miil.core.key_lists import check_conversion, placeholder_state_dict, read_key_list

LISTS = Path(__file__).parent / "original_keys"

# list -> (ds_factors, embed_dim, heads the published config uses, classes, clip samples)
CASES = {
    "eat_s_esc50": ((4, 4, 4, 4), 128, 8, 50, 114688),
    "eat_m_audioset": ((4, 4, 4, 4), 256, 16, 527, 221184),
    "eat_s_speechcommands": ((4, 4, 4), 128, 8, 35, 16384),
}


def _blur(shape) -> torch.Tensor:
    # AADownsample: taps 1, 2, ..., k // 2 + 1, ..., 2, 1 over their sum, one copy per channel: [C, 1, k].
    channels, _, k = shape
    half = torch.arange(1, k // 2 + 2, dtype=torch.float32)
    taps = torch.cat([half, half.flip(0)[1:]])
    return (taps / taps.sum()).expand(channels, 1, k).clone()


def _source(name: str, prefix: str = "", device: str = "meta") -> tuple[dict, dict]:
    listed = read_key_list(LISTS / f"{name}.txt")
    filters = {prefix + k: _blur(s) for k, s in listed.shapes.items() if k.endswith(".filt")}
    return listed.shapes, placeholder_state_dict(listed.with_prefix(prefix), device=device, fill=filters)


@pytest.mark.parametrize("name", sorted(CASES))
def test_listed_layout_converts_one_for_one(name):
    shapes, source = _source(name)
    ds, embed, heads, classes, seq_len = CASES[name]
    config, num_classes, length = config_from_original(source)
    assert (config.ds_factors, config.embed_dim, config.num_heads, num_classes, length) == (
        ds, embed, heads, classes, seq_len
    )  # fmt: skip
    with torch.device("meta"):
        model = EAT(num_classes=num_classes, seq_len=length, config=config)
    converted = convert_original_state_dict(source, model=model)
    blur = [k for k in shapes if k.endswith(".filt")]
    assert len(blur) == len(ds) + 2  # one per down-sampling stage; ours rebuilds them
    check_conversion(shapes, converted, model, dropped=blur)


def test_data_parallel_state_dict():
    # The AudioSet run uses --use_dp: best_model.pt's keys carry 'module.'.
    shapes, source = _source("eat_m_audioset", prefix="module.")
    config, num_classes, length = config_from_original({k[len("module.") :]: v for k, v in source.items()})
    with torch.device("meta"):
        model = EAT(num_classes=num_classes, seq_len=length, config=config)
    converted = convert_original_state_dict(source, model=model)
    check_conversion(shapes, converted, model, dropped=[k for k in shapes if k.endswith(".filt")])


@pytest.mark.parametrize("wrap", ["best_model", "chkpnt"])
def test_trainer_files(tmp_path, wrap):
    shapes, source = _source("eat_s_esc50", device="cpu")  # the loader builds a real model: 5M zeros
    path = tmp_path / f"{wrap}.pt"
    torch.save(source if wrap == "best_model" else {"model_dict": source, "steps": 1000}, path)
    model = load_original_checkpoint(path)
    assert model.head.out_features == 50
    check_conversion(shapes, model.state_dict(), model, dropped=[k for k in shapes if k.endswith(".filt")])
