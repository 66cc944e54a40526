import pytest
import torch
import torch.nn as nn
from timm.layers.ml_decoder import MLDecoder as TimmMLDecoder

from miil.mldecoder import MLDecoder, MLDecoderLayer, convert_state_dict, resolve_num_groups
from miil.mldecoder.decoder_layer import Dropout


@pytest.mark.parametrize("num_classes,num_groups,in_features", [(80, -1, 64), (1000, 100, 48), (37, 5, 16)])
def test_logits_equal_timm_through_converter(num_classes, num_groups, in_features, timm_runnable):
    torch.manual_seed(num_classes)
    theirs = timm_runnable(TimmMLDecoder(num_classes, num_of_groups=num_groups, initial_num_features=in_features))
    ours = MLDecoder(num_classes, in_features=in_features, num_groups=num_groups)
    ours.load_state_dict(convert_state_dict(theirs.state_dict(), ours, layout="timm"))
    theirs.eval(), ours.eval()
    x = torch.randn(3, in_features, 5, 4)
    with torch.no_grad():
        expected = theirs(x)
        torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-5)
        # tokens in, same logits
        torch.testing.assert_close(ours(x.flatten(2).transpose(1, 2)), expected, rtol=1e-5, atol=1e-5)


def test_logits_equal_original_layout_round_trip(original_layout):
    torch.manual_seed(1)
    ours = MLDecoder(20, in_features=24, num_groups=6, embed_dim=32, ffn_dim=64, num_heads=4).eval()
    original = original_layout(ours.state_dict())
    assert "decoder.embed_standart.weight" in original and "decoder.duplicate_pooling" in original
    fresh = MLDecoder(20, in_features=24, num_groups=6, embed_dim=32, ffn_dim=64, num_heads=4).eval()
    fresh.load_state_dict(convert_state_dict(original, fresh, layout="original"))
    x = torch.randn(2, 24, 3, 3)
    torch.testing.assert_close(fresh(x), ours(x), rtol=0, atol=0)


def test_faithful_defaults():
    head = MLDecoder(80, in_features=2048)
    assert head.num_groups == 80  # K = min(100, N)
    assert MLDecoder(1000, in_features=8, embed_dim=16, ffn_dim=16).num_groups == 100
    assert resolve_num_groups(9605, 200) == 200 and resolve_num_groups(5, None) == 5
    layer = head.layer
    assert head.embed_dim == 768 and layer.fc1.out_features == 2048 and layer.attn.num_heads == 8
    assert layer.drop_query.p == layer.attn.attn_drop == 0.1
    assert "query_embed" in dict(head.named_buffers()) and "query_embed" not in dict(head.named_parameters())
    learn = MLDecoder(10, in_features=8, embed_dim=16, ffn_dim=16, learnable_queries=True)
    assert "query_embed" in dict(learn.named_parameters())


def test_every_parameter_gets_a_gradient_and_no_nan():
    torch.manual_seed(0)
    head = MLDecoder(30, in_features=12, num_groups=7, embed_dim=16, ffn_dim=32, num_heads=2, learnable_queries=True)
    head.train()
    out = head(torch.randn(4, 12, 3, 5))
    assert out.shape == (4, 30) and torch.isfinite(out).all()
    out.square().mean().backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_frozen_queries_stay_fixed_in_training():
    head = MLDecoder(10, in_features=8, embed_dim=16, ffn_dim=16, num_heads=2)
    before = head.query_embed.clone()
    opt = torch.optim.SGD(head.parameters(), lr=1.0)
    head(torch.randn(2, 8, 2, 2)).sum().backward()
    opt.step()
    torch.testing.assert_close(head.query_embed, before, rtol=0, atol=0)


def test_training_dropout_differs_per_sample_and_eval_is_batch_independent():
    torch.manual_seed(0)
    head = MLDecoder(10, in_features=8, embed_dim=16, ffn_dim=16, num_heads=2)
    x = torch.randn(1, 8, 3, 3).expand(4, -1, -1, -1)
    head.train()
    out = head(x)
    assert not torch.allclose(out[0], out[1])  # independent dropout masks per sample
    head.eval()
    out = head(x)
    torch.testing.assert_close(out[0], out[3])
    single = head(x[:1])
    torch.testing.assert_close(out[:1], single, rtol=1e-5, atol=1e-6)


def test_layer_matches_equations():
    """The decoder layer from the paper's equations: post-norm, no self-attention, 'q + dropout(q)' stub."""
    torch.manual_seed(0)
    layer = MLDecoderLayer(16, 2, 32, dropout=0.0).train()
    for norm in (layer.norm1, layer.norm2, layer.norm3):  # non-trivial affine maps (norm1's is folded into q)
        nn.init.normal_(norm.weight, 1.0, 0.5), nn.init.normal_(norm.bias, 0.0, 0.5)
    q, mem = torch.randn(5, 16), torch.randn(3, 7, 16, requires_grad=True)
    d = 16
    w, b = layer.attn.in_proj_weight, layer.attn.in_proj_bias
    t = layer.norm1(2 * q)
    qh = (t @ w[:d].T + b[:d]).view(5, 2, 8).transpose(0, 1)
    kh = (mem @ w[d : 2 * d].T + b[d : 2 * d]).view(3, 7, 2, 8).transpose(1, 2)
    vh = (mem @ w[2 * d :].T + b[2 * d :]).view(3, 7, 2, 8).transpose(1, 2)
    att = torch.softmax(qh @ kh.transpose(-1, -2) / 8**0.5, dim=-1) @ vh
    att = layer.attn.out_proj(att.transpose(1, 2).reshape(3, 5, d))
    t = layer.norm2(t + att)
    expected = layer.norm3(t + layer.fc2(torch.relu(layer.fc1(t))))
    out = layer(q, mem)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    # the same gradients for every parameter and the memory
    params = [*layer.parameters(), mem]
    got = torch.autograd.grad(out.square().sum(), params)
    want = torch.autograd.grad(expected.square().sum(), params)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


def test_dropout_statistics_and_eval_identity():
    torch.manual_seed(0)
    drop = Dropout(0.1).train()
    x = torch.ones(200_000)
    y = drop(x)
    kept = y != 0
    assert kept.float().mean().item() == pytest.approx(0.9, abs=0.005)
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.9))
    assert not torch.equal(drop(x), y)  # fresh mask every call
    xg = torch.randn(1000, requires_grad=True)
    out = drop(xg)
    out.sum().backward()
    torch.testing.assert_close(xg.grad, (out != 0).float() / 0.9)
    assert drop.eval()(x) is x and Dropout(0.0).train()(x) is x


def test_input_validation():
    head = MLDecoder(5, in_features=8, embed_dim=16, ffn_dim=16, num_heads=2)
    with pytest.raises(ValueError, match="8-channel"):
        head(torch.randn(2, 9, 3, 3))
    with pytest.raises(ValueError, match="3-D tokens or 4-D"):
        head(torch.randn(2, 8))
    with pytest.raises(ValueError, match="input_format"):
        MLDecoder(5, in_features=8, input_format="NDHW")
    with pytest.raises(ValueError, match="divisible"):
        MLDecoder(5, in_features=8, embed_dim=10, num_heads=4)
    nhwc = MLDecoder(5, in_features=8, embed_dim=16, ffn_dim=16, num_heads=2, input_format="NHWC").eval()
    x = torch.randn(2, 8, 3, 4)
    nchw = MLDecoder(5, in_features=8, embed_dim=16, ffn_dim=16, num_heads=2).eval()
    nchw.load_state_dict(nhwc.state_dict())
    torch.testing.assert_close(nhwc(x.permute(0, 2, 3, 1)), nchw(x))
