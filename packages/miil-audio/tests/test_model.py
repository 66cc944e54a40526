import pytest
import torch

from miil.audio import EAT, EAT_CONFIGS, create_eat, eat_m, eat_s
from miil.audio.layers import AADownsample1d, interpolate_pos_embed, triangle_filter

from .conftest import TINY, TINY_LEN


def _count(model):
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_match_the_published_sizes():
    small = eat_s(num_classes=50)
    # The original SoundNetRaw(nf=16, emb 128, ff 512, 4 layers, 8 heads) at 50 classes: 5.18M.
    assert _count(small) == 5_183_618
    assert _count(small.aggregator) == 807_936  # 0.81M transformer, the rest is the waveform encoder
    medium = eat_m(num_classes=50)
    assert 25.2e6 < _count(medium) < 25.4e6
    assert _count(medium.aggregator) == 7_946_752
    # 1024x down-sampling: ESC-50's 114688 samples become 112 tokens, AudioSet's 221184 become 216.
    assert small.stride == 1024 and small.num_tokens(114688) == 112
    assert medium.num_tokens(221184) == 216
    speech = eat_s(num_classes=35, seq_len=16384, ds_factors=(4, 4, 4))
    assert speech.num_tokens(16384) == 64


def test_configs_are_the_papers():
    s, m = EAT_CONFIGS["eat_s"], EAT_CONFIGS["eat_m"]
    assert (s.base_channels, s.embed_dim, s.mlp_dim, s.depth, s.num_heads) == (16, 128, 512, 4, 8)
    assert (m.base_channels, m.embed_dim, m.mlp_dim, m.depth, m.num_heads) == (32, 256, 2048, 6, 16)
    layer = eat_s().aggregator.layers[0]
    assert layer.norm_first is False and layer.activation is torch.nn.functional.gelu
    assert layer.dropout.p == 0.1


@pytest.mark.parametrize("length", [TINY_LEN, TINY_LEN + 37, 2 * TINY_LEN, 3000])
def test_output_shapes_for_several_clip_lengths(length):
    torch.manual_seed(0)
    model = create_eat("eat_s", num_classes=7, seq_len=TINY_LEN, **TINY).eval()
    x = torch.randn(3, 1, length)
    tokens = model.forward_features(x)
    assert tokens.shape == (3, model.num_tokens(length), 16)
    assert model.num_tokens(length) == -(-length // 16)
    out = model(x)
    assert out.shape == (3, 7) and torch.isfinite(out).all()
    assert model(x[:, 0]).shape == (3, 7)  # [B, L] input too


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = create_eat("eat_s", num_classes=4, seq_len=TINY_LEN, **TINY)
    model(torch.randn(2, 1, TINY_LEN)).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_too_short_clips_and_fixed_length_mode_raise():
    model = create_eat("eat_s", num_classes=3, seq_len=TINY_LEN, **TINY)
    assert model.min_length == 505
    with pytest.raises(ValueError, match="shorter than"):
        model(torch.randn(1, 1, model.min_length - 1))
    model.eval()(torch.randn(1, 1, model.min_length))  # the minimum itself works
    with pytest.raises(ValueError, match="seq_len"):
        create_eat("eat_s", num_classes=3, seq_len=400, **TINY)
    fixed = create_eat("eat_s", num_classes=3, seq_len=TINY_LEN, dynamic_length=False, **TINY)
    with pytest.raises(ValueError, match="position embedding"):
        fixed(torch.randn(1, 1, 2 * TINY_LEN))
    with pytest.raises(KeyError, match="unknown EAT model"):
        create_eat("eat_xl", num_classes=3, seq_len=TINY_LEN)
    with pytest.raises(TypeError, match="unknown EAT config fields"):
        create_eat("eat_s", num_classes=3, seq_len=TINY_LEN, width=3)


def test_position_embedding_interpolation_keeps_cls_and_is_linear():
    pos = torch.arange(5, dtype=torch.float32).view(1, 5, 1).repeat(1, 1, 2)  # CLS 0, tokens 1..4
    out = interpolate_pos_embed(pos, 8)
    assert out.shape == (1, 9, 2) and out[0, 0, 0] == 0
    assert torch.allclose(out[0, 1:, 0], torch.tensor([1.0, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75, 4.0]))
    model = create_eat("eat_s", num_classes=3, seq_len=TINY_LEN, **TINY)
    with torch.no_grad():
        model.aggregator.pos_embed.normal_()
    before = model.aggregator.pos_embed.detach().clone()
    model.set_seq_len(2 * TINY_LEN)
    assert model.aggregator.pos_embed.shape == (1, 129, 16)
    assert torch.equal(model.aggregator.pos_embed[:, 0], before[:, 0])
    # On-the-fly interpolation of the old embedding equals the permanently resized one.
    x = torch.randn(2, 1, 2 * TINY_LEN)
    dynamic = create_eat("eat_s", num_classes=3, seq_len=TINY_LEN, **TINY)
    dynamic.load_state_dict({**model.state_dict(), "aggregator.pos_embed": before})
    model.eval(), dynamic.eval()
    assert torch.allclose(model(x), dynamic(x), atol=1e-5)


def test_initialisation_follows_the_original():
    torch.manual_seed(0)
    model = eat_s(num_classes=10, seq_len=32768)
    conv_std = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, torch.nn.Conv1d)]).std()
    assert 0.018 < conv_std < 0.022
    assert torch.count_nonzero(model.aggregator.cls_token) == 0 and torch.count_nonzero(model.aggregator.pos_embed) == 0
    assert torch.count_nonzero(model.head.bias) == 0
    layer = model.aggregator.layers[0]
    assert torch.count_nonzero(layer.linear1.bias) == 0
    model.reset_classifier(5)
    assert model.head.out_features == 5 and model(torch.randn(1, 1, 32768)).shape == (1, 5)


def test_antialiased_downsampling_filter_and_length():
    assert torch.allclose(triangle_filter(9) * 25, torch.tensor([1.0, 2, 3, 4, 5, 4, 3, 2, 1]))
    with pytest.raises(ValueError):
        triangle_filter(4)
    blur = AADownsample1d(channels=3, stride=4)
    x = torch.ones(2, 3, 101)
    y = blur(x)
    assert y.shape == (2, 3, 26)  # ceil(101 / 4)
    assert torch.allclose(y, torch.ones_like(y))  # a normalised low-pass keeps DC
    assert "filter" not in blur.state_dict()


def test_heads_and_width_mismatch_rejected():
    with pytest.raises(ValueError, match="divisible"):
        EAT(num_classes=2, seq_len=TINY_LEN, config=EAT_CONFIGS["eat_s"].__class__(**{**TINY, "num_heads": 3}))
