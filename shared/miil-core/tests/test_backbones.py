import pytest
import torch
from timm.models.convnext import ConvNeXt
from timm.models.resnet import BasicBlock, ResNet
from timm.models.swin_transformer import SwinTransformer
from timm.models.tresnet import TResNet
from timm.models.vision_transformer import VisionTransformer

from miil.core.backbones import (
    TokenBackbone,
    create_backbone,
    feature_dim,
    feature_format,
    forward_tokens,
    to_tokens,
)
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
