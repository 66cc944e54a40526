import pytest
import torch
from timm.models.convnext import ConvNeXt
from timm.models.resnet import BasicBlock, ResNet
from timm.models.swin_transformer import SwinTransformer
from timm.models.tresnet import TResNet
from timm.models.vision_transformer import VisionTransformer

from miil.core.backbones import (
    TokenBackbone,
    backbone_features,
    create_backbone,
    feature_dim,
    feature_format,
    feature_width,
    forward_tokens,
    prepare_backbone,
    to_tokens,
)
from miil.core.errors import UserError
from miil.core.io import save_safetensors

# Tiny configs of the five families: (factory, kwargs, input size, expected token count).
FAMILIES = {
    "resnet": (ResNet, dict(block=BasicBlock, layers=[1, 1, 1, 1], num_classes=0), 64, 4),
    "tresnet": (TResNet, dict(layers=[1, 1, 1, 1], width_factor=0.25, num_classes=0), 64, 4),
    "convnext": (ConvNeXt, dict(depths=(1, 1, 1, 1), dims=(8, 16, 24, 32), num_classes=0), 64, 4),
    "swin": (
        SwinTransformer,
        dict(img_size=32, patch_size=4, window_size=4, embed_dim=16, depths=(1, 1), num_heads=(1, 2), num_classes=0),
        32,
        16,
    ),
    "vit": (
        VisionTransformer,
        dict(img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2, num_classes=0),
        32,
        17,
    ),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_to_tokens_on_every_family(family):
    cls, kwargs, size, n_tokens = FAMILIES[family]
    torch.manual_seed(0)
    model = create_backbone(cls, **kwargs).eval()
    x = torch.randn(2, 3, size, size)
    tokens = forward_tokens(model, x)
    assert tokens.shape == (2, n_tokens, feature_dim(model))
    assert torch.isfinite(tokens).all()
    feats = model.forward_features(x)
    # The tokens are exactly the feature map's positions, in row-major order.
    if feats.ndim == 4 and feature_format(model) == "NCHW":
        assert torch.equal(tokens[:, 1], feats[:, :, 0, 1])
    elif feats.ndim == 4:
        assert feature_format(model) == "NHWC"
        assert torch.equal(tokens[:, 1], feats[:, 0, 1, :])
    else:
        assert torch.equal(tokens, feats)


def test_formats_are_detected():
    assert feature_format(create_backbone(FAMILIES["swin"][0], **FAMILIES["swin"][1])) == "NHWC"
    assert feature_format(create_backbone(FAMILIES["resnet"][0], **FAMILIES["resnet"][1])) == "NCHW"


def test_to_tokens_layouts_and_errors():
    nchw = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    t = to_tokens(nchw, "NCHW")
    assert t.shape == (2, 20, 3)
    assert torch.equal(t[0, 7], nchw[0, :, 1, 2])
    nhwc = nchw.permute(0, 2, 3, 1)
    assert torch.equal(to_tokens(nhwc, "NHWC"), t)
    with pytest.raises(ValueError, match="layout"):
        to_tokens(nchw, "CHWN")
    with pytest.raises(ValueError, match="shape"):
        to_tokens(torch.zeros(2, 3))


def test_timm_name_and_local_checkpoint(tmp_path):
    net = create_backbone("resnet18", num_classes=0)
    assert feature_dim(net) == 512
    ckpt = tmp_path / "r18.safetensors"
    torch.manual_seed(1)
    src = create_backbone("resnet18", num_classes=0)
    save_safetensors(src.state_dict(), ckpt)
    loaded = create_backbone("resnet18", num_classes=0, checkpoint=ckpt)
    for (k, a), b in zip(src.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match="unknown timm model"):
        create_backbone("not_a_model_xyz")


def test_token_backbone_module_gets_gradients():
    cls, kwargs, size, n = FAMILIES["vit"]
    bb = TokenBackbone(cls, **kwargs)
    out = bb(torch.randn(2, 3, size, size))
    assert out.shape == (2, n, bb.num_features)
    out.sum().backward()
    assert all(p.grad is not None for p in bb.parameters() if p.requires_grad)


def test_pooled_width_is_the_head_hidden_size_not_num_features():
    # MobileNetV3's head runs a 1x1 conv_head after pooling: 288 body channels, 1024 pre-logits features.
    torch.manual_seed(0)
    model = prepare_backbone(create_backbone("mobilenetv3_small_050"), "pooled")
    assert (model.num_features, model.head_hidden_size, feature_width(model)) == (288, 1024, 1024)
    x = torch.randn(2, 3, 32, 32)
    pooled = backbone_features(model.eval(), x, "pooled")
    assert pooled.shape == (2, 1024)
    # The same as timm's own pre-logits path, and what the classifier would be fed.
    torch.testing.assert_close(pooled, model.forward_head(model.forward_features(x), pre_logits=True))
    with pytest.raises(ValueError, match=r"mobilenetv3_small_050 \(MobileNetV3\).*width 1024.*288"):
        backbone_features(model, x, "pooled", width=288)


@pytest.mark.parametrize("name", ["mobilenetv3_small_050", "resnet18"])
def test_unpooled_forms_keep_the_positions(name):
    torch.manual_seed(0)
    kwargs = {"layers": [1, 1, 1, 1]} if name == "resnet18" else {}
    model = prepare_backbone(create_backbone(name, drop_rate=0.2, **kwargs), "tokens")
    width = feature_width(model, "tokens")
    assert model.drop_rate == 0.0  # a pre-classifier dropout would act on every position
    x = torch.randn(2, 3, 64, 64)
    fmap = backbone_features(model, x, "map")
    tokens = backbone_features(model, x, "tokens")
    assert fmap.shape == (2, width, 2, 2) and tokens.shape == (2, 4, width)
    assert torch.equal(tokens, to_tokens(fmap, "NCHW"))
    pooled_model = create_backbone(name, **kwargs)  # still pooling: not a map
    with pytest.raises(ValueError, match="prepare_backbone"):
        backbone_features(pooled_model, x, "map")
    with pytest.raises(ValueError, match="feature form"):
        backbone_features(model, x, "grid")


def test_vit_tokens_drop_prefix_tokens_on_request():
    cls, kwargs, size, n = FAMILIES["vit"]
    model = prepare_backbone(create_backbone(cls, **kwargs), "tokens")
    x = torch.randn(2, 3, size, size)
    assert backbone_features(model, x, "tokens").shape == (2, n, 32)
    assert backbone_features(model, x, "tokens", num_prefix_tokens=1).shape == (2, n - 1, 32)


def test_plain_modules_are_read_as_they_are():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3), torch.nn.ReLU())
    assert prepare_backbone(net, "pooled") is net
    x = torch.randn(2, 3, 8, 8)
    pooled = backbone_features(net, x, "pooled", width=6)
    torch.testing.assert_close(pooled, net(x).mean(dim=(2, 3)))
    assert backbone_features(net, x, "tokens", width=6).shape == (2, 36, 6)
    with pytest.raises(AttributeError, match="num_features"):
        feature_width(net)


@pytest.mark.parametrize(
    "error",
    [
        lambda: __import__("huggingface_hub.errors").errors.LocalEntryNotFoundError("no cached copy, hub offline"),
        lambda: ConnectionError("Failed to establish a new connection"),
    ],
)
def test_offline_pretrained_download_is_a_user_error(monkeypatch, error):
    import huggingface_hub.constants
    import timm.models._hub

    def offline(*args, **kwargs):
        raise error()

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(timm.models._hub, "hf_hub_download", offline)
    with pytest.raises(
        UserError,
        match=r"weights for test_resnet could not be downloaded.*--pretrained false.*"
        r"--init-checkpoint FILE",
    ):
        create_backbone("test_resnet", pretrained=True)
