"""Every package's model on every timm family: a forward and a backward on CPU, every trainable parameter reached.

"Any timm backbone" is what each package promises (ML-Decoder, CSL, USI, IN-21K, STAM, PETA, diversity). Each model
is built from a timm name, as a user would, at a tiny size (timm's own test models, or the family's smallest member
shrunk through keyword arguments, on 32-pixel inputs), with ``pretrained=False``. The families cover the head layouts
that trip a package up: NCHW CNNs (ResNet, TResNet, EfficientNet, RegNet), heads with a hidden layer after the pooling
(MobileNetV3 / V4, GhostNet: ``head_hidden_size`` differs from ``num_features``), a head norm (ConvNeXt), NHWC maps
(Swin) and token sequences with a class token (ViT). miil-audio is not here: EAT is a 1-D waveform network of its own,
not an image backbone, and ``miil.audio`` takes no timm model.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from miil.album import PETA
from miil.core.backbones import create_backbone
from miil.csl import create_csl_model
from miil.diversity.filter_diversity import classifier_module
from miil.diversity.ssl import ContrastiveStep, NTXentLoss, SSLModel
from miil.in21k import create_in21k_model
from miil.mldecoder import create_model
from miil.stam import STAM
from miil.usi import USI, create_student
from miil.usi.distill import KDStep
from miil.usi.loss import USIDistillationLoss

SIZE = 32
CLASSES = 3

# family -> (timm name, keyword arguments that shrink it)
FAMILIES = {
    "resnet": ("test_resnet", {}),
    "tresnet": ("tresnet_m", {"layers": [1, 1, 1, 1], "width_factor": 0.25}),
    "efficientnet": ("test_efficientnet", {}),
    "mobilenetv3": ("mobilenetv3_small_050", {}),
    "mobilenetv4": ("mobilenetv4_conv_small_035", {}),
    "ghostnet": ("ghostnet_050", {}),
    "convnext": ("convnext_atto", {"depths": (1, 1, 1, 1), "dims": (8, 16, 32, 64)}),
    "regnet": ("regnetx_002", {}),
    "vit": ("test_vit", {"img_size": SIZE, "patch_size": 8}),
    "swin": (
        "swin_tiny_patch4_window7_224",
        {"img_size": SIZE, "window_size": 2, "embed_dim": 8, "depths": (1, 1, 1, 1), "num_heads": (1, 1, 1, 1)},
    ),
}


def _images(n: int) -> torch.Tensor:
    return torch.rand(n, 3, SIZE, SIZE)


def _mldecoder(name, kwargs):
    model = create_model(name, CLASSES, model_kwargs=kwargs, num_groups=CLASSES, embed_dim=16, num_heads=2, ffn_dim=16)
    return model, lambda: F.binary_cross_entropy_with_logits(model(_images(2)), torch.ones(2, CLASSES))


def _csl(name, kwargs):
    model = create_csl_model(name, num_classes=CLASSES, **kwargs)
    return model, lambda: F.binary_cross_entropy_with_logits(model(_images(2)), torch.ones(2, CLASSES))


def _usi(name, kwargs):
    cfg = dataclasses.replace(USI, model=name, num_classes=CLASSES)
    model = create_student(cfg, **kwargs)
    teacher = create_student(cfg, **kwargs).eval().requires_grad_(False)
    step = KDStep(USIDistillationLoss(), teacher=teacher)
    soft = torch.full((2, CLASSES), 1.0 / CLASSES)
    return model, lambda: step(model, (_images(2), soft))


def _in21k(name, kwargs):
    model, _ = create_in21k_model(name, num_classes=CLASSES, **kwargs)
    return model, lambda: F.cross_entropy(model(_images(2)), torch.tensor([0, 2]))


def _stam(name, kwargs):
    model = STAM(
        spatial=name,
        spatial_kwargs=kwargs,
        num_classes=CLASSES,
        num_frames=2,
        temporal_depth=1,
        temporal_heads=2,
        temporal_mlp_dim=16,
    )
    return model, lambda: F.cross_entropy(model(torch.rand(2, 2, 3, SIZE, SIZE)), torch.tensor([0, 1]))


def _album(name, kwargs):
    model = PETA(name, backbone_kwargs=kwargs, num_classes=CLASSES, depth=1, num_heads=2, ffn_dim=16)
    mask = torch.tensor([[True, True, True], [True, True, False]])  # albums of 3 and 2 photos
    albums = torch.rand(2, 3, 3, SIZE, SIZE)
    return model, lambda: F.binary_cross_entropy_with_logits(model(albums, mask), torch.ones(2, CLASSES))


def _diversity(name, kwargs):
    backbone = create_backbone(name, num_classes=CLASSES, **kwargs)
    for p in classifier_module(backbone).parameters():  # frozen during SSL, as train_ssl does
        p.requires_grad_(False)
    model = SSLModel(backbone, proj_hidden=16, proj_dim=8)
    step = ContrastiveStep(NTXentLoss())
    return model, lambda: step(model, (_images(2), _images(2)))


PACKAGES = {
    "mldecoder": _mldecoder,
    "csl": _csl,
    "usi": _usi,
    "in21k": _in21k,
    "stam": _stam,
    "album": _album,
    "diversity": _diversity,
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_forward_and_backward(package, family):
    name, kwargs = FAMILIES[family]
    torch.manual_seed(0)
    model, loss_fn = PACKAGES[package](name, dict(kwargs))
    model.train()
    loss = loss_fn()
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    missing = [n for n, p in trainable if p.grad is None]
    assert not missing, f"{package} on {name}: no gradient for {missing[:5]}"
    bad = [n for n, p in trainable if not torch.isfinite(p.grad).all()]
    assert not bad, f"{package} on {name}: non-finite gradient for {bad[:5]}"
