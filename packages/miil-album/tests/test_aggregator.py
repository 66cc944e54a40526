"""AlbumTransformer: parity with PyTorch's TransformerEncoder (the original's layers), masks, order, gradients."""

import pytest
import torch
import torch.nn as nn

from miil.album import AlbumEncoderLayer, AlbumTransformer


def _reference(agg: AlbumTransformer, norm_first: bool) -> nn.TransformerEncoder:
    """PyTorch's encoder with the original's defaults, loaded with our weights (same parameter names)."""
    dim = agg.dim
    layer = nn.TransformerEncoderLayer(
        dim, agg.num_heads, dim_feedforward=agg.layers[0].linear1.out_features, batch_first=True, norm_first=norm_first
    )
    ref = nn.TransformerEncoder(layer, num_layers=agg.depth, norm=nn.LayerNorm(dim), enable_nested_tensor=False)
    for ours, theirs in zip(agg.layers, ref.layers):
        theirs.load_state_dict(ours.state_dict())
    ref.norm.load_state_dict(agg.norm.state_dict())
    return ref.eval()


@pytest.mark.parametrize("norm_first", [False, True])
def test_matches_pytorch_transformer_encoder(norm_first):
    torch.manual_seed(0)
    agg = AlbumTransformer(32, depth=3, num_heads=4, ffn_dim=64, norm_first=norm_first, pos_embed=True).eval()
    ref = _reference(agg, norm_first)
    tokens = torch.randn(2, 5, 32)
    x = torch.cat([agg.cls_token.expand(2, -1, -1), tokens], 1) + agg.pos_embed[:, :6]
    expected = ref(x)[:, 0]
    torch.testing.assert_close(agg(tokens), expected, rtol=1e-5, atol=1e-5)
    # With a key-padding mask, PyTorch's encoder masks the same keys.
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    padding = torch.cat([torch.zeros(2, 1, dtype=torch.bool), ~mask], 1)
    expected = ref(x, src_key_padding_mask=padding)[:, 0]
    torch.testing.assert_close(agg(tokens, mask), expected, rtol=1e-5, atol=1e-5)


def test_original_defaults():
    agg = AlbumTransformer(64)
    layer = agg.layers[0]
    assert agg.depth == 6 and agg.num_heads == 8
    assert layer.linear1.out_features == 2048 and layer.dropout.p == 0.1 and layer.activation_name == "relu"
    assert not layer.norm_first and isinstance(agg.norm, nn.LayerNorm)
    assert agg.pos_embed is None  # order-invariant by default
    assert AlbumTransformer(64, pos_embed=True, max_images=32).pos_embed.shape == (1, 33, 64)


def test_padding_changes_nothing():
    torch.manual_seed(1)
    agg = AlbumTransformer(16, depth=2, num_heads=2, ffn_dim=32).eval()
    album = torch.randn(1, 4, 16)
    alone = agg(album)
    padded = torch.cat([album, 100 * torch.randn(1, 3, 16)], 1)
    mask = torch.tensor([[True] * 4 + [False] * 3])
    out, attention = agg(padded, mask, return_attention=True)
    torch.testing.assert_close(out, alone, rtol=1e-5, atol=1e-6)
    assert attention.shape == (1, 2, 2, 8, 8)
    assert torch.all(attention[..., 5:] == 0)  # no query attends to a padded image


def test_order_invariant_without_position_embedding():
    torch.manual_seed(2)
    agg = AlbumTransformer(16, depth=2, num_heads=4, ffn_dim=32).eval()
    album = torch.randn(3, 6, 16)
    perm = torch.randperm(6)
    torch.testing.assert_close(agg(album[:, perm]), agg(album), rtol=1e-5, atol=1e-6)
    with_pos = AlbumTransformer(16, depth=2, num_heads=4, ffn_dim=32, pos_embed=True).eval()
    assert not torch.allclose(with_pos(album[:, perm]), with_pos(album), atol=1e-4)


def test_position_embedding_bounds_the_album_length():
    agg = AlbumTransformer(8, depth=1, num_heads=2, ffn_dim=8, pos_embed=True, max_images=4)
    agg(torch.randn(1, 4, 8))
    with pytest.raises(ValueError, match="longer than the position embedding"):
        agg(torch.randn(1, 5, 8))


def test_bad_masks_are_refused():
    agg = AlbumTransformer(8, depth=1, num_heads=2, ffn_dim=8)
    with pytest.raises(ValueError, match="no images"):
        agg(torch.randn(2, 3, 8), torch.tensor([[True, False, False], [False, False, False]]))
    with pytest.raises(TypeError, match="bool"):
        agg(torch.randn(1, 3, 8), torch.ones(1, 3))
    with pytest.raises(ValueError, match="divisible"):
        AlbumEncoderLayer(10, num_heads=4)


@pytest.mark.parametrize("pos_embed", [False, True])
def test_every_parameter_gets_a_gradient(pos_embed):
    torch.manual_seed(3)
    agg = AlbumTransformer(16, depth=2, num_heads=2, ffn_dim=32, pos_embed=pos_embed)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    agg(torch.randn(2, 5, 16), mask).pow(2).sum().backward()
    for name, p in agg.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
