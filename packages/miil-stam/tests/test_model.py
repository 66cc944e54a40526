"""STAM model: shapes, gradients, the temporal transformer against the paper's equations, pos-embed resizing."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from miil.stam import STAM_PRESETS, FrameAverage, TemporalTransformer, create_stam, resize_temporal_pos_embed


@pytest.mark.parametrize("frames", [4, 8])
def test_stam_shapes(frames, tiny_stam):
    model = tiny_stam(num_frames=frames).eval()
    video = torch.rand(2, frames, 3, 32, 32)
    assert model.forward_frames(video).shape == (2, frames, 32)
    assert model.forward_features(video).shape == (2, 32)
    logits = model(video)
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()


def test_stam_rejects_wrong_rank(tiny_stam):
    with pytest.raises(ValueError, match=r"\[B, T, C, H, W\]"):
        tiny_stam()(torch.rand(2, 3, 32, 32))


@pytest.mark.parametrize("aggregation", ["transformer", "mean"])
def test_every_parameter_gets_a_gradient(aggregation, tiny_stam):
    model = tiny_stam(aggregation=aggregation, temporal_dropout=0.0).train()
    loss = F.cross_entropy(model(torch.rand(3, 8, 3, 32, 32)), torch.tensor([0, 1, 2]))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def _mha(attn: torch.nn.MultiheadAttention, z: torch.Tensor) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d_head)) V per head, heads concatenated, output projection."""
    b, n, d = z.shape
    heads = attn.num_heads
    q, k, v = (
        u.view(b, n, heads, d // heads).transpose(1, 2)
        for u in F.linear(z, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    )
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // heads), dim=-1)
    return F.linear((w @ v).transpose(1, 2).reshape(b, n, d), attn.out_proj.weight, attn.out_proj.bias)


def _ffn(layer: torch.nn.TransformerEncoderLayer, z: torch.Tensor) -> torch.Tensor:
    return layer.linear2(torch.relu(layer.linear1(z)))


def _reference_temporal(module: TemporalTransformer, frames: torch.Tensor, *, norm_first: bool) -> torch.Tensor:
    """The temporal transformer written out from its equations, reading the module's weights."""
    x = torch.cat([module.cls_token.expand(frames.shape[0], -1, -1), frames], dim=1) + module.pos_embed
    for layer in module.layers:
        if norm_first:  # x + MHA(LN(x)), then x + FFN(LN(x))
            x = x + _mha(layer.self_attn, layer.norm1(x))
            x = x + _ffn(layer, layer.norm2(x))
        else:  # the original post-norm: LN(x + MHA(x)), then LN(x + FFN(x))
            x = layer.norm1(x + _mha(layer.self_attn, x))
            x = layer.norm2(x + _ffn(layer, x))
    return module.norm(x)[:, 0]


@pytest.mark.parametrize("norm_first", [False, True])
def test_temporal_transformer_matches_equations(norm_first):
    module = TemporalTransformer(num_frames=6, embed_dim=16, depth=2, num_heads=4, mlp_dim=24, norm_first=norm_first)
    module.eval()
    frames = torch.randn(3, 6, 16)
    with torch.no_grad():
        got = module(frames)
        want = _reference_temporal(module, frames, norm_first=norm_first)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_temporal_defaults_are_the_originals():
    with torch.device("meta"):  # shapes and settings only: skip allocating 33M parameters
        module = TemporalTransformer()
    layer = module.layers[0]
    assert len(module.layers) == 6 and module.pos_embed.shape == (1, 17, 768)
    assert layer.self_attn.num_heads == 8 and layer.linear1.out_features == 2048
    assert layer.dropout.p == 0.1 and layer.activation is F.relu and not layer.norm_first
    assert isinstance(module.norm, torch.nn.LayerNorm)
    # Truncated-normal init at two standard deviations of 0.02.
    small = TemporalTransformer(num_frames=63, embed_dim=64, depth=1, num_heads=8, mlp_dim=16)
    assert small.pos_embed.abs().max() <= 0.04 + 1e-6 and 0.015 < small.pos_embed.std() < 0.025


def test_temporal_order_matters_but_not_for_frame_average():
    transformer = TemporalTransformer(num_frames=5, embed_dim=16, depth=1, num_heads=2, mlp_dim=32).eval()
    average = FrameAverage(embed_dim=16)
    frames = torch.randn(2, 5, 16)
    reversed_frames = frames.flip(1)
    torch.testing.assert_close(average(frames), average(reversed_frames))
    assert not torch.allclose(transformer(frames), transformer(reversed_frames), atol=1e-4)
    no_pos = TemporalTransformer(num_frames=5, embed_dim=16, depth=1, num_heads=2, mlp_dim=32, use_pos_embed=False)
    torch.testing.assert_close(no_pos.eval()(frames), no_pos(reversed_frames), atol=1e-5, rtol=1e-5)


def test_resize_temporal_pos_embed():
    pos = torch.randn(1, 5, 8)
    same = resize_temporal_pos_embed(pos, 4)
    assert same is pos
    up = resize_temporal_pos_embed(pos, 8)
    assert up.shape == (1, 9, 8)
    torch.testing.assert_close(up[:, 0], pos[:, 0])  # CLS position kept
    # Linear interpolation (align_corners=False) doubling the length: the first/last frames stay, the means in between.
    torch.testing.assert_close(up[:, 1], pos[:, 1])
    torch.testing.assert_close(up[:, 8], pos[:, 4])
    torch.testing.assert_close(up[:, 2], 0.75 * pos[:, 1] + 0.25 * pos[:, 2])
    constant = torch.ones(1, 7, 3)
    torch.testing.assert_close(resize_temporal_pos_embed(constant, 3), torch.ones(1, 4, 3))
    with pytest.raises(ValueError):
        resize_temporal_pos_embed(torch.randn(5, 8), 4)


def test_checkpoint_for_other_length_loads_interpolated(tiny_stam):
    source = tiny_stam(num_frames=4)
    target = tiny_stam(num_frames=8)
    target.load_state_dict(source.state_dict(), strict=True)
    want = resize_temporal_pos_embed(source.temporal.pos_embed.detach(), 8)
    torch.testing.assert_close(target.temporal.pos_embed.detach(), want)
    torch.testing.assert_close(target.spatial.pos_embed, source.spatial.pos_embed)


def test_other_clip_length_at_inference_uses_interpolated_positions(tiny_stam):
    model = tiny_stam(num_frames=8).eval()
    video = torch.rand(1, 4, 3, 32, 32)
    resized = tiny_stam(num_frames=4).eval()
    state = model.state_dict()
    state["temporal.pos_embed"] = resize_temporal_pos_embed(state["temporal.pos_embed"], 4)
    resized.load_state_dict(state)
    with torch.no_grad():
        torch.testing.assert_close(model(video), resized(video))


def test_presets_and_original_parameter_count():
    assert {k: v["num_frames"] for k, v in STAM_PRESETS.items()} == {
        "stam_8": 8,
        "stam_16": 16,
        "stam_32": 32,
        "stam_64": 64,
    }
    assert [v["frame_rate"] for v in STAM_PRESETS.values()] == [0.8, 1.6, 3.2, 6.4]
    with torch.device("meta"):  # parameter shapes only
        model = create_stam("STAM-16")
    count = {
        name: sum(p.numel() for p in getattr(model, name).parameters()) for name in ("spatial", "temporal", "head")
    }
    # Research notes: 85.8M spatial (ViT-B/16) + 33.1M temporal + 0.3M head = 119M.
    assert count == {"spatial": 85_798_656, "temporal": 33_099_264, "head": 307_600}
    assert model.temporal.pos_embed.shape == (1, 17, 768)
    assert all(m.eps == 1e-5 for m in model.spatial.modules() if isinstance(m, torch.nn.LayerNorm))
    with pytest.raises(ValueError, match="unknown STAM preset"):
        create_stam("stam_12")


def test_no_weight_decay_names_exist(tiny_stam):
    model = tiny_stam()
    names = set(dict(model.named_parameters()))
    assert {"temporal.pos_embed", "temporal.cls_token", "spatial.pos_embed"} <= model.no_weight_decay()
    assert {"temporal.pos_embed", "temporal.cls_token", "spatial.pos_embed", "spatial.cls_token"} <= names


def test_pos_embed_std_option():
    module = TemporalTransformer(num_frames=64, embed_dim=64, depth=1, num_heads=2, mlp_dim=8, pos_embed_std=1.0)
    assert 0.7 < module.pos_embed.std() < 1.0
