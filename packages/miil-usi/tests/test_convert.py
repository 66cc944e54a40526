import pytest
import torch
import torch.nn as nn
from timm.layers import BatchNormAct2d
from timm.models.tresnet import TResNet

from miil.core.io import KeyMappingError
from miil.usi import convert_inplace_abn_tresnet, is_inplace_abn_tresnet, load_weights


def _original_layout(model: nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """The state dict the original (InplaceABN) TResNet would hold for ``model``'s weights.

    ConvNormAct ``x.conv`` / ``x.bn`` become ``x.0`` / ``x.1``, or ``x.0.0`` / ``x.0.1`` when an anti-aliasing layer
    follows (the original wrapped conv+IABN and the blur in a Sequential); IABN stores a weight whose ``|w| + 1e-5``
    is the scale (random signs here), has no batch counter, and the blur layers carry a ``filt`` buffer.
    """
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, module in model.named_modules():
        conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, BatchNormAct2d):
            aa = getattr(module, "aa", None)
            nested = aa is not None and not isinstance(aa, nn.Identity)
            c, b = (f"{name}.0.0", f"{name}.0.1") if nested else (f"{name}.0", f"{name}.1")
            out[f"{c}.weight"] = conv.weight.detach().clone()
            sign = torch.where(torch.rand(bn.num_features, generator=g) < 0.5, -1.0, 1.0)
            out[f"{b}.weight"] = sign * (bn.weight.detach() - 1e-5)
            out[f"{b}.bias"] = bn.bias.detach().clone()
            out[f"{b}.running_mean"] = bn.running_mean.clone()
            out[f"{b}.running_var"] = bn.running_var.clone()
            if nested:
                out[f"{name}.1.filt"] = torch.ones(conv.out_channels, 1, 3, 3) / 9
    for key, value in model.state_dict().items():
        if ".se." in key or key.startswith("head."):
            out[key] = value.clone()
    return out


@pytest.mark.parametrize("v2", [True, False])
def test_original_checkpoint_converts_to_identical_outputs(v2, bn_randomizer, tmp_path):
    torch.manual_seed(0)
    source = bn_randomizer(TResNet(layers=[1, 1, 1, 1], width_factor=0.25, v2=v2, num_classes=6)).eval()
    original = _original_layout(source)
    assert is_inplace_abn_tresnet(original) and not is_inplace_abn_tresnet(source.state_dict())
    target = TResNet(layers=[1, 1, 1, 1], width_factor=0.25, v2=v2, num_classes=6).eval()
    target.load_state_dict(convert_inplace_abn_tresnet(original, target), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(target(x), source(x), rtol=1e-5, atol=1e-5)
    # The weights-only .pth file as the authors shipped it ({"model": state_dict}) loads through load_weights.
    path = tmp_path / "tresnet_original.pth"
    torch.save({"model": original, "epoch": 300}, path)
    fresh = load_weights(TResNet(layers=[1, 1, 1, 1], width_factor=0.25, v2=v2, num_classes=6), path).eval()
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), source(x), rtol=1e-5, atol=1e-5)


def test_conversion_is_strict(bn_randomizer):
    source = TResNet(layers=[1, 1, 1, 1], width_factor=0.25, v2=True, num_classes=6)
    original = _original_layout(source)
    target = TResNet(layers=[1, 1, 1, 1], width_factor=0.25, v2=True, num_classes=6)
    extra = {**original, "body.extra.weight": torch.zeros(1)}
    with pytest.raises(KeyMappingError, match="unmapped"):
        convert_inplace_abn_tresnet(extra, target)
    missing = {k: v for k, v in original.items() if not k.endswith("conv3.0.weight")}
    with pytest.raises(KeyMappingError, match="missing"):
        convert_inplace_abn_tresnet(missing, target)
    wrong = TResNet(layers=[1, 1, 1, 1], width_factor=0.25, v2=True, num_classes=7)
    with pytest.raises(KeyMappingError, match="shape"):
        convert_inplace_abn_tresnet(original, wrong)
