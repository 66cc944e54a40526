"""ClsTransformer: PyTorch's encoder to the bit, position modes, masks, attention, loading, the original layout."""

import pytest
import torch
import torch.nn as nn

from miil.core.io import KeyMappingError
from miil.core.layers import (
    ClsEncoderLayer,
    ClsTransformer,
    convert_original_aggregator,
    rename_legacy_encoder_keys,
    resize_pos_embed,
)

TINY = dict(depth=2, num_heads=4, mlp_dim=24)


def _pytorch_encoder(module: ClsTransformer, activation: str, norm_first: bool) -> nn.TransformerEncoder:
    """``nn.TransformerEncoder`` (what STAM and EAT used, and the originals) holding ``module``'s weights."""
    layer = nn.TransformerEncoderLayer(
        16,
        4,
        dim_feedforward=24,
        dropout=module.layers[0].dropout.p,
        activation=activation,
        batch_first=True,
        norm_first=norm_first,
    )
    ref = nn.TransformerEncoder(layer, num_layers=2, norm=nn.LayerNorm(16), enable_nested_tensor=False)
    ref.load_state_dict({k: v for k, v in module.state_dict().items() if k.startswith(("layers.", "norm."))})
    return ref


@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_identical_to_pytorch_transformer_encoder(activation, norm_first):
    torch.manual_seed(0)
    module = ClsTransformer(16, num_tokens=5, activation=activation, norm_first=norm_first, dropout=0.0, **TINY)
    ref = _pytorch_encoder(module, activation, norm_first)
    tokens = torch.randn(3, 5, 16)
    x = torch.cat([module.cls_token.expand(3, -1, -1), tokens], dim=1) + module.pos_embed
    for train in (True, False):
        module.train(train), ref.train(train)
        assert torch.equal(module(tokens), ref(x)[:, 0])
        with torch.no_grad():  # PyTorch's inference fast path, for both
            assert torch.equal(module(tokens), ref(x)[:, 0])


def test_initialisations_and_layer_copies():
    torch.manual_seed(0)
    stam_like = ClsTransformer(64, num_tokens=63, depth=3, num_heads=8, mlp_dim=16)
    assert stam_like.pos_embed.abs().max() <= 0.04 + 1e-6 and 0.015 < stam_like.pos_embed.std() < 0.025
    assert all(torch.count_nonzero(layer.linear1.bias) == 0 for layer in stam_like.layers)
    # Copies of one layer (nn.TransformerEncoder's way): the attention input projections start equal.
    first, second = stam_like.layers[0].self_attn.in_proj_weight, stam_like.layers[1].self_attn.in_proj_weight
    assert torch.equal(first, second)
    independent = ClsTransformer(64, num_tokens=4, depth=2, num_heads=8, mlp_dim=16, clone_layers=False)
    assert not torch.equal(
        independent.layers[0].self_attn.in_proj_weight, independent.layers[1].self_attn.in_proj_weight
    )
    eat_like = ClsTransformer(16, num_tokens=4, init="zero_tokens", activation="gelu", **TINY)
    assert torch.count_nonzero(eat_like.cls_token) == 0 and torch.count_nonzero(eat_like.pos_embed) == 0
    assert torch.count_nonzero(eat_like.layers[0].linear1.bias) > 0  # PyTorch's own initialisation
    assert ClsTransformer(16, pos_embed=False, **TINY).no_weight_decay() == {"cls_token"}
    with pytest.raises(ValueError, match="num_tokens"):
        ClsTransformer(16, **TINY)
    with pytest.raises(ValueError, match="pos_embed_mode"):
        ClsTransformer(16, num_tokens=4, pos_embed_mode="wrap", **TINY)
    with pytest.raises(ValueError, match="divisible"):
        ClsEncoderLayer(10, num_heads=4)


def test_position_modes():
    torch.manual_seed(1)
    interp = ClsTransformer(16, num_tokens=4, **TINY).eval()
    longer = torch.randn(2, 7, 16)
    resized = ClsTransformer(16, num_tokens=7, **TINY).eval()
    resized.load_state_dict(interp.state_dict())  # loads with the positions interpolated
    torch.testing.assert_close(resized.pos_embed, resize_pos_embed(interp.pos_embed, 7))
    assert torch.equal(interp(longer), resized(longer))
    crop = ClsTransformer(16, num_tokens=6, pos_embed_mode="crop", **TINY).eval()
    short = torch.randn(2, 3, 16)
    x = torch.cat([crop.cls_token.expand(2, -1, -1), short], dim=1) + crop.pos_embed[:, :4]
    first_positions = _pytorch_encoder(crop, "relu", False).eval()(x)[:, 0]
    assert torch.equal(crop(short), first_positions)
    with pytest.raises(ValueError, match="longer than the position embedding"):
        crop(longer)
    fixed = ClsTransformer(16, num_tokens=4, pos_embed_mode="fixed", **TINY)
    with pytest.raises(ValueError, match="position embedding has 4"):
        fixed(longer)
    fixed.resize_pos_embed(7)
    assert fixed.pos_embed.shape == (1, 8, 16) and fixed.num_tokens == 7 and fixed(longer).shape == (2, 16)
    with pytest.raises(RuntimeError, match="pos_embed"):  # crop and fixed load strictly
        ClsTransformer(16, num_tokens=7, pos_embed_mode="crop", **TINY).load_state_dict(interp.state_dict())


def test_resize_pos_embed_keeps_the_prefix_and_interpolates_linearly():
    pos = torch.arange(5, dtype=torch.float32).view(1, 5, 1).repeat(1, 1, 2)  # CLS 0, tokens 1..4
    out = resize_pos_embed(pos, 8)
    assert out.shape == (1, 9, 2) and out[0, 0, 0] == 0
    assert torch.allclose(out[0, 1:, 0], torch.tensor([1.0, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75, 4.0]))
    assert resize_pos_embed(pos, 4) is pos
    with pytest.raises(ValueError, match="position embedding"):
        resize_pos_embed(torch.zeros(5, 2), 3)


def test_masks_attention_and_gradients():
    torch.manual_seed(2)
    module = ClsTransformer(16, pos_embed=False, **TINY).eval()
    seq = torch.randn(1, 4, 16)
    padded = torch.cat([seq, 100 * torch.randn(1, 3, 16)], dim=1)
    mask = torch.tensor([[True] * 4 + [False] * 3])
    out, attention = module(padded, mask, return_attention=True)
    torch.testing.assert_close(out, module(seq), rtol=1e-5, atol=1e-6)
    assert attention.shape == (1, 2, 4, 8, 8) and torch.all(attention[..., 5:] == 0)
    torch.testing.assert_close(attention.sum(-1), torch.ones(1, 2, 4, 8))
    with pytest.raises(ValueError, match=r"sequences \[1\] of the batch have no tokens"):
        module(torch.randn(2, 3, 16), torch.tensor([[True, False, False], [False, False, False]]))
    with pytest.raises(TypeError, match="bool"):
        module(seq, torch.ones(1, 4))
    module.train()
    module(padded.repeat(2, 1, 1), mask.repeat(2, 1)).pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_earlier_encoder_key_layout_still_loads():
    torch.manual_seed(3)
    module = ClsTransformer(16, num_tokens=4, final_norm=True, **TINY).eval()
    legacy = {
        k.replace("layers.", "encoder.layers.", 1) if k.startswith("layers.") else k: v
        for k, v in module.state_dict().items()
    }
    legacy = {("encoder." + k if k.startswith("norm.") else k): v for k, v in legacy.items()}
    assert "encoder.layers.1.linear2.weight" in legacy and "encoder.norm.bias" in legacy
    assert list(rename_legacy_encoder_keys(legacy)) == list(module.state_dict())
    fresh = ClsTransformer(16, num_tokens=4, **TINY).eval()
    fresh.load_state_dict(legacy, strict=True)
    x = torch.randn(2, 4, 16)
    assert torch.equal(fresh(x), module(x))


def _original_taggregate(tokens: int, use_positions: bool = True):
    """The originals' ``TAggregate``: PyTorch's sequence-first encoder (post-norm) + final norm, CLS, positions."""
    torch.manual_seed(4)
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=24)
    encoder = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(16), enable_nested_tensor=False).eval()
    cls, pos = torch.randn(1, 1, 16), torch.randn(1, tokens + 1, 16)
    state = {"cls_token": cls, "pos_embed": pos, **{f"transformer_enc.{k}": v for k, v in encoder.state_dict().items()}}

    def forward(x):
        x = torch.cat([cls.expand(x.shape[0], -1, -1), x], dim=1) + (pos if use_positions else 0)
        return encoder(x.transpose(0, 1))[0]

    return state, forward


def test_original_aggregator_converts_strictly():
    state, forward = _original_taggregate(5)
    module = ClsTransformer(16, num_tokens=5, **TINY).eval()
    module.load_state_dict(convert_original_aggregator(state, module), strict=True)
    x = torch.randn(3, 5, 16)
    with torch.no_grad():
        torch.testing.assert_close(module(x), forward(x), atol=1e-5, rtol=1e-5)
    prefixed = {f"module.aggregate.{k}": v for k, v in state.items()}
    assert convert_original_aggregator(prefixed, module).keys() == module.state_dict().keys()
    with pytest.raises(KeyMappingError, match=r"unmapped.*\n\s+transformer_enc\.scale"):
        convert_original_aggregator({**state, "transformer_enc.scale": torch.zeros(1)}, module)
    with pytest.raises(KeyMappingError, match=r"unexpected.*\n\s+layers\.0\.extra"):
        convert_original_aggregator({**state, "transformer_enc.layers.0.extra": torch.zeros(1)}, module)
    no_pos = ClsTransformer(16, pos_embed=False, **TINY)
    with pytest.raises(KeyMappingError, match="pos_embed"):
        convert_original_aggregator(state, no_pos)
    assert "pos_embed" not in convert_original_aggregator(state, no_pos, drop_unused_pos_embed=True)
    crop = ClsTransformer(16, num_tokens=7, pos_embed_mode="crop", **TINY)
    with pytest.raises(KeyMappingError, match="shape"):
        convert_original_aggregator(state, crop)
    interp = ClsTransformer(16, num_tokens=7, **TINY)
    torch.testing.assert_close(
        convert_original_aggregator(state, interp)["pos_embed"], resize_pos_embed(state["pos_embed"], 7)
    )
