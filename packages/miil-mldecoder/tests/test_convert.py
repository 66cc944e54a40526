import pytest
import torch

from miil.core.io import KeyMappingError, save_safetensors
from miil.mldecoder import MLDecoder, convert_state_dict, create_model, detect_layout, head_config, load_converted

HEAD = dict(embed_dim=16, num_heads=2, ffn_dim=32, num_groups=4)
RESNET = dict(layers=[1, 1, 1, 1])


def _pair():
    torch.manual_seed(0)
    source = create_model("resnet18", 10, model_kwargs=RESNET, **HEAD).eval()
    target = create_model("resnet18", 10, model_kwargs=RESNET, **HEAD).eval()
    return source, target


def _timm_layout(head_state, prefix):
    names = {
        "proj.": "embed_standart.",
        "layer.attn.out_proj.": "decoder.layers.0.multihead_attn.out_proj.",
        "layer.attn.": "decoder.layers.0.multihead_attn.",
        "layer.fc1.": "decoder.layers.0.linear1.",
        "layer.fc2.": "decoder.layers.0.linear2.",
        "layer.norm": "decoder.layers.0.norm",
        "group_fc.weight": "duplicate_pooling",
        "group_fc.bias": "duplicate_pooling_bias",
        "query_embed": "query_embed.weight",
    }
    out = {}
    for k, v in head_state.items():
        ours = next(o for o in names if k.startswith(o))
        out[prefix + names[ours] + k[len(ours) :]] = v
    return out


@pytest.mark.parametrize("layout,prefix", [("original", "fc."), ("timm", "fc."), ("original", "head.")])
def test_whole_model_converts_to_identical_logits(layout, prefix, original_layout):
    source, target = _pair()
    head = source.head.state_dict()
    head_keys = original_layout(head, prefix) if layout == "original" else _timm_layout(head, prefix)
    state = {**source.backbone.state_dict(), **head_keys}
    assert detect_layout(state) == (layout, prefix)
    target.load_state_dict(convert_state_dict(state, target))
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(target(x), source(x), rtol=0, atol=0)


def test_conversion_is_strict(original_layout):
    source, target = _pair()
    state = {**source.backbone.state_dict(), **original_layout(source.head.state_dict(), "fc.")}
    extra = {**state, "fc.decoder.layers.1.linear1.weight": torch.zeros(32, 16)}  # a second decoder layer
    with pytest.raises(KeyMappingError, match="layers.1.linear1"):
        convert_state_dict(extra, target)
    missing = {k: v for k, v in state.items() if not k.endswith("norm3.bias")}
    with pytest.raises(KeyMappingError, match="head.layer.norm3.bias|layer.norm3.bias"):
        convert_state_dict(missing, target)
    wrong = dict(state)
    wrong["fc.decoder.duplicate_pooling"] = torch.zeros(5, 16, 2)
    with pytest.raises(KeyMappingError, match="shape"):
        convert_state_dict(wrong, target)
    with pytest.raises(ValueError, match="original layout"):
        convert_state_dict(state, target, layout="timm")
    with pytest.raises(ValueError, match="bare head"):
        convert_state_dict(state, target.head)
    with pytest.raises(ValueError, match="found no ML-Decoder"):
        convert_state_dict(source.backbone.state_dict(), target)


def test_head_config_and_file_loading(tmp_path, original_layout):
    head = MLDecoder(9605, in_features=24, num_groups=200, embed_dim=16, num_heads=2, ffn_dim=40)
    state = original_layout(head.state_dict(), "head.")
    cfg = head_config(state)
    assert cfg == dict(
        zero_shot=False, num_classes=9605, num_groups=200, embed_dim=16, ffn_dim=40, in_features=24
    )  # fmt: skip
    path = tmp_path / "orig.safetensors"
    save_safetensors({k[len("head.") :]: v for k, v in state.items()}, path)
    fresh = MLDecoder(9605, in_features=24, num_groups=200, embed_dim=16, num_heads=2, ffn_dim=40).eval()
    load_converted(fresh, path)
    x = torch.randn(2, 5, 24)
    torch.testing.assert_close(fresh(x), head.eval()(x), rtol=0, atol=0)
