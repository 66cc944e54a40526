import pytest
import timm
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from miil.usi import fuse_batchnorm


def _count_bn(model):
    return sum(isinstance(m, _BatchNorm) for m in model.modules())


@pytest.mark.parametrize("name", ["test_resnet", "test_efficientnet", "test_byobnet"])
def test_timm_models_fuse_without_changing_outputs(name, bn_randomizer):
    torch.manual_seed(0)
    model = bn_randomizer(timm.create_model(name, num_classes=5)).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
    assert _count_bn(model) > 0
    result = fuse_batchnorm(model, x[:2])
    with torch.no_grad():
        after = model(x)
    assert len(result.fused) > 0 and result.remaining_batchnorms == 0 == _count_bn(model)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)


def test_tresnet_batchnorm_act_layers_keep_their_activation(bn_randomizer):
    from timm.models.tresnet import TResNet

    torch.manual_seed(0)
    model = bn_randomizer(TResNet(layers=[1, 1, 1, 1], width_factor=0.25, v2=True, num_classes=4)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
    result = fuse_batchnorm(model, x)
    with torch.no_grad():
        after = model(x)
    assert result.remaining_batchnorms == 0
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    # The fused BatchNormAct2d keeps its LeakyReLU.
    assert any(isinstance(m, nn.LeakyReLU) for m in model.body.layer1[0].conv1.modules())


class _Branchy(nn.Module):
    """Registration order differs from execution order, and one conv output feeds a BN *and* a residual add."""

    def __init__(self):
        super().__init__()
        self.bn_a = nn.BatchNorm2d(4)  # registered before its conv
        self.conv_a = nn.Conv2d(3, 4, 3, padding=1)
        self.conv_b = nn.Conv2d(4, 4, 3, padding=1)
        self.bn_b = nn.BatchNorm2d(4)
        self.head = nn.Linear(4, 3)
        self.bn_head = nn.BatchNorm1d(3)

    def forward(self, x):
        a = self.bn_a(self.conv_a(x)).relu()
        b = self.conv_b(a)
        b = self.bn_b(b) + b  # conv_b's output is used twice: folding bn_b into conv_b would be wrong
        return self.bn_head(self.head(b.mean((2, 3))))


def test_data_flow_pairs_and_the_numerical_check(bn_randomizer):
    torch.manual_seed(0)
    model = bn_randomizer(_Branchy()).eval()
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        before = model(x)
    result = fuse_batchnorm(model, x[:2])
    with torch.no_grad():
        after = model(x)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)
    assert ("conv_a", "bn_a") in result.fused and ("head", "bn_head") in result.fused
    assert ("conv_b", "bn_b") not in result.fused
    assert any(p == "conv_b" and b == "bn_b" for p, b, _ in result.skipped)
    assert isinstance(model.bn_b, nn.BatchNorm2d) and isinstance(model.bn_a, nn.Identity)
    assert result.remaining_batchnorms == 1


def test_modules_used_twice_are_left_alone(bn_randomizer):
    conv, bn = nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = conv, bn

        def forward(self, x):
            return self.bn(self.conv(self.bn(self.conv(x))))

    model = bn_randomizer(Twice()).eval()
    x = torch.randn(2, 3, 4, 4)
    with torch.no_grad():
        before = model(x)
    result = fuse_batchnorm(model, x)
    assert result.fused == [] and result.skipped
    torch.testing.assert_close(model(x), before)
