import pytest
import timm
import torch

from miil.mldecoder import MLDecoder, MLDecoderClassifier, add_ml_decoder_head, create_model

HEAD = dict(embed_dim=16, num_heads=2, ffn_dim=32)

# One tiny member of each family the issue names, with its input size.
FAMILIES = {
    "resnet": ("resnet18", dict(layers=[1, 1, 1, 1]), 32),
    "tresnet": ("tresnet_m", dict(layers=[1, 1, 1, 1], width_factor=0.25), 64),
    "convnext": ("convnext_atto", dict(depths=(1, 1, 1, 1), dims=(8, 16, 32, 64)), 32),
    "efficientnet": ("test_efficientnet", {}, 32),
    "vit": ("test_vit", dict(img_size=32, patch_size=8), 32),
    "swin": (
        "swin_tiny_patch4_window7_224",
        dict(img_size=32, window_size=2, embed_dim=8, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1)),
        32,
    ),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_ml_decoder_on_every_family(family):
    name, kwargs, size = FAMILIES[family]
    torch.manual_seed(0)
    model = create_model(name, 13, model_kwargs=kwargs, num_groups=5, **HEAD)
    assert isinstance(model, MLDecoderClassifier) and isinstance(model.head, MLDecoder)
    assert model.head.num_groups == 5 and model.num_classes == 13
    model.train()
    out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 13) and torch.isfinite(out).all()
    out.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{family}: parameters without gradient: {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_layouts_are_read_from_the_backbone():
    swin = create_model("swin_tiny_patch4_window7_224", 4, model_kwargs=FAMILIES["swin"][1], **HEAD)
    assert swin.feature_format == "NHWC" and swin.head.input_format == "NHWC"
    vit = create_model("test_vit", 4, model_kwargs=FAMILIES["vit"][1], **HEAD)
    assert vit.num_prefix_tokens == 1
    tokens = vit.forward_features(torch.randn(1, 3, 32, 32))
    assert tokens.shape[1] == 16  # 4 x 4 patches, class token dropped
    keep = create_model("test_vit", 4, model_kwargs=FAMILIES["vit"][1], drop_prefix_tokens=False, **HEAD)
    assert keep.forward_features(torch.randn(1, 3, 32, 32)).shape[1] == 17


def test_add_head_to_existing_model_and_linear_baseline():
    net = timm.create_model("resnet18", num_classes=7, layers=[1, 1, 1, 1], drop_rate=0.3)
    model = add_ml_decoder_head(net, **HEAD)
    assert model.num_classes == 7 and net.drop_rate == 0.0 and not hasattr(net.fc, "weight")
    assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 7)
    base = create_model("resnet18", 7, head="linear", model_kwargs=dict(layers=[1, 1, 1, 1]))
    assert base.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 7) and base.fc.out_features == 7
    vit = create_model("test_vit", 3, model_kwargs=FAMILIES["vit"][1], **HEAD)
    assert {"backbone.pos_embed", "backbone.cls_token"} <= vit.no_weight_decay()


def test_factory_errors():
    with pytest.raises(ValueError, match="unknown timm model"):
        create_model("no_such_net", 3)
    with pytest.raises(ValueError, match="head must be one of"):
        create_model("resnet18", 3, head="mlp")
    with pytest.raises(ValueError, match="num_classes"):
        create_model("resnet18", 0, model_kwargs=dict(layers=[1, 1, 1, 1]))
    with pytest.raises(TypeError, match="not a timm model"):
        add_ml_decoder_head(torch.nn.Conv2d(3, 4, 3), 3)
