"""The strict converter of the original STAM checkpoints: identical logits, loud failures."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from miil.core.io import KeyMappingError
from miil.stam import (
    TemporalTransformer,
    convert_original_checkpoint,
    convert_original_temporal,
    resize_temporal_pos_embed,
    to_original_layout,
)

HEADS_SPATIAL, HEADS_TEMPORAL = 2, 4


def _attention(x, qkv_w, qkv_b, proj_w, proj_b, heads):
    n, length, d = x.shape
    q, k, v = F.linear(x, qkv_w, qkv_b).view(n, length, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // heads), dim=-1)
    return F.linear((w @ v).transpose(1, 2).reshape(n, length, d), proj_w, proj_b)


def _original_forward(sd: dict, video: torch.Tensor, frames: int) -> torch.Tensor:
    """The released STAM forward pass, read off the original key layout: a ViT on B*T frames, TAggregate, head."""
    ln = lambda z, key: F.layer_norm(z, z.shape[-1:], sd[key + ".weight"], sd[key + ".bias"], eps=1e-5)  # noqa: E731
    x = video.flatten(0, 1)  # the original batches the B*T frames video-major
    x = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=16).flatten(2).transpose(1, 2)
    x = torch.cat([sd["cls_token"].expand(x.shape[0], -1, -1), x], dim=1) + sd["pos_embed"]
    depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    for i in range(depth):
        p = f"blocks.{i}."
        x = x + _attention(
            ln(x, p + "norm1"),
            sd[p + "attn.qkv.weight"],
            sd[p + "attn.qkv.bias"],
            sd[p + "attn.proj.weight"],
            sd[p + "attn.proj.bias"],
            HEADS_SPATIAL,
        )
        h = F.gelu(F.linear(ln(x, p + "norm2"), sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"]))
        x = x + F.linear(h, sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
    x = ln(x, "norm")[:, 0]
    # TAggregate: view (B, T, D), prepend CLS, add positions, sequence-first post-norm encoder, final norm, o[0].
    x = x.view(-1, frames, x.shape[-1])
    x = torch.cat([sd["aggregate.cls_token"].expand(x.shape[0], -1, -1), x], dim=1) + sd["aggregate.pos_embed"]
    x = x.transpose(0, 1)
    layers = len({k.split(".")[3] for k in sd if k.startswith("aggregate.transformer_enc.layers.")})
    for j in range(layers):
        p = f"aggregate.transformer_enc.layers.{j}."
        bx = x.transpose(0, 1)
        a = _attention(
            bx,
            sd[p + "self_attn.in_proj_weight"],
            sd[p + "self_attn.in_proj_bias"],
            sd[p + "self_attn.out_proj.weight"],
            sd[p + "self_attn.out_proj.bias"],
            HEADS_TEMPORAL,
        ).transpose(0, 1)
        x = ln(x + a, p + "norm1")
        h = F.linear(F.relu(F.linear(x, sd[p + "linear1.weight"], sd[p + "linear1.bias"])), sd[p + "linear2.weight"])
        x = ln(x + h + sd[p + "linear2.bias"], p + "norm2")
    x = ln(x, "aggregate.transformer_enc.norm")[0]
    return F.linear(x, sd["head.weight"], sd["head.bias"])


def _original_state(model) -> dict:
    sd = {k: v.detach().clone() for k, v in to_original_layout(model.state_dict()).items()}
    for key in sd:  # make every tensor distinctive, so a swapped key cannot go unnoticed
        sd[key] = sd[key] + 0.05 * torch.randn_like(sd[key])
    return sd


def test_original_layout_keys(tiny_stam):
    sd = to_original_layout(tiny_stam().state_dict())
    assert "aggregate.transformer_enc.layers.0.self_attn.in_proj_weight" in sd
    assert "aggregate.transformer_enc.norm.weight" in sd and "aggregate.pos_embed" in sd
    assert "blocks.0.attn.qkv.weight" in sd and "patch_embed.proj.weight" in sd and "head.weight" in sd
    assert not [k for k in sd if k.startswith(("spatial.", "temporal."))]


def test_converted_original_gives_identical_logits(tiny_stam):
    model = tiny_stam(spatial_kwargs={"img_size": 32, "patch_size": 16, "embed_dim": 32, "depth": 2, "num_heads": 2})
    original = _original_state(model)
    converted = convert_original_checkpoint({"model": original, "epoch": 3}, model)
    model.load_state_dict(converted, strict=True)
    model.eval()
    video = torch.rand(2, 8, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(video), _original_forward(original, video, 8), atol=2e-5, rtol=1e-4)


def test_converter_strips_ddp_prefix_and_interpolates_positions(tiny_stam):
    source = tiny_stam(num_frames=4)
    original = {f"module.{k}": v for k, v in _original_state(source).items()}
    target = tiny_stam(num_frames=8)
    converted = convert_original_checkpoint(original, target)
    target.load_state_dict(converted, strict=True)
    want = resize_temporal_pos_embed(original["module.aggregate.pos_embed"], 8)
    torch.testing.assert_close(target.temporal.pos_embed.detach(), want)


def test_converter_is_strict(tiny_stam):
    model = tiny_stam()
    original = _original_state(model)
    missing = dict(original)
    del missing["aggregate.transformer_enc.norm.weight"]
    with pytest.raises(KeyMappingError, match="aggregate.transformer_enc.norm.weight|temporal.norm.weight"):
        convert_original_checkpoint({"model": missing}, model)
    extra = dict(original, **{"aggregate.extra_scale": torch.ones(1)})
    with pytest.raises(KeyMappingError, match="aggregate.extra_scale"):
        convert_original_checkpoint({"model": extra}, model)
    wrong_head = dict(original, **{"head.weight": torch.zeros(7, 32), "head.bias": torch.zeros(7)})
    with pytest.raises(KeyMappingError, match="shape"):
        convert_original_checkpoint({"model": wrong_head}, model)


def _original_temporal_aggregator(frames: int, dim: int = 16, heads: int = 4, depth: int = 2, ff: int = 24):
    """The original ``TAggregate`` as its code builds it: PyTorch's sequence-first encoder (post-norm, ReLU) with a
    final LayerNorm, a CLS token and positions; returns its state dict (distinct random values) and its forward."""
    torch.manual_seed(5)
    layer = torch.nn.TransformerEncoderLayer(d_model=dim, nhead=heads, dim_feedforward=ff)
    encoder = torch.nn.TransformerEncoder(
        layer, num_layers=depth, norm=torch.nn.LayerNorm(dim), enable_nested_tensor=False
    )
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(0.1 * torch.randn_like(p))
    state = {f"transformer_enc.{k}": v.clone() for k, v in encoder.state_dict().items()}
    state["cls_token"] = torch.randn(1, 1, dim)
    state["pos_embed"] = torch.randn(1, frames + 1, dim)
    encoder.eval()

    def forward(x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([state["cls_token"].expand(x.shape[0], -1, -1), x], dim=1) + state["pos_embed"]
        return encoder(x.transpose(0, 1))[0]

    return state, forward


def test_original_temporal_aggregator_alone_gives_identical_outputs():
    state, original_forward = _original_temporal_aggregator(frames=6)
    module = TemporalTransformer(num_frames=6, embed_dim=16, depth=2, num_heads=4, mlp_dim=24).eval()
    module.load_state_dict(convert_original_temporal(state, module), strict=True)
    frames = torch.randn(3, 6, 16)
    with torch.no_grad():
        torch.testing.assert_close(module(frames), original_forward(frames), atol=1e-5, rtol=1e-5)
    # The same weights under the full checkpoint's "aggregate." prefix, saved from DataParallel, in {"model": ...}.
    wrapped = {"model": {f"module.aggregate.{k}": v for k, v in state.items()}, "epoch": 3}
    again = TemporalTransformer(num_frames=6, embed_dim=16, depth=2, num_heads=4, mlp_dim=24).eval()
    again.load_state_dict(convert_original_temporal(wrapped, again), strict=True)
    with torch.no_grad():
        assert torch.equal(again(frames), module(frames))


def test_original_temporal_aggregator_alone_is_strict_and_resizes_positions():
    state, _ = _original_temporal_aggregator(frames=4)
    longer = TemporalTransformer(num_frames=8, embed_dim=16, depth=2, num_heads=4, mlp_dim=24)
    converted = convert_original_temporal(state, longer)
    torch.testing.assert_close(converted["pos_embed"], resize_temporal_pos_embed(state["pos_embed"], 8))
    with pytest.raises(KeyMappingError, match="transformer_enc.layers.1.linear1.weight|layers.1.linear1.weight"):
        convert_original_temporal({k: v for k, v in state.items() if "layers.1.linear1.weight" not in k}, longer)
    with pytest.raises(KeyMappingError, match="blocks.0.attn.qkv.weight"):  # a spatial key: not the aggregator alone
        convert_original_temporal({**state, "blocks.0.attn.qkv.weight": torch.zeros(3, 3)}, longer)
    deeper = TemporalTransformer(num_frames=4, embed_dim=16, depth=3, num_heads=4, mlp_dim=24)
    with pytest.raises(KeyMappingError, match="layers.2"):
        convert_original_temporal(state, deeper)
    with pytest.raises(TypeError, match="TemporalTransformer"):
        convert_original_temporal(state, torch.nn.Linear(2, 2))
