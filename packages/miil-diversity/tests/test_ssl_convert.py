"""NT-Xent against the paper's equation, the SSL stage on the engine, and strict loading of DINO-layout checkpoints."""

import math

import pytest
import timm
import torch
import torch.nn as nn
from torchvision import transforms as T

from miil.core.data import digits_pil_images
from miil.core.io import KeyMappingError
from miil.core.train import TrainConfig
from miil.diversity import (
    SSLModel,
    TwoViewDataset,
    classifier_keys,
    load_ssl_weights,
    nt_xent_loss,
    penultimate_features,
    train_ssl,
)
from miil.usi.demo import DemoCNN


def _reference_nt_xent(z1, z2, t):
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1).double()
    n2 = z.shape[0]
    n = n2 // 2
    total = 0.0
    for i in range(n2):
        j = (i + n) % n2
        sims = [math.exp(float(z[i] @ z[k]) / t) for k in range(n2) if k != i]
        total += -math.log(math.exp(float(z[i] @ z[j]) / t) / sum(sims))
    return total / n2


def test_nt_xent_matches_the_equation():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    assert float(nt_xent_loss(z1, z2, temperature=0.3)) == pytest.approx(_reference_nt_xent(z1, z2, 0.3), rel=1e-5)
    aligned = float(nt_xent_loss(z1, z1 * 2.0, temperature=0.3))
    assert aligned < float(nt_xent_loss(z1, z2, temperature=0.3))
    with pytest.raises(ValueError, match="same shape"):
        nt_xent_loss(z1, z2[:3])


def test_train_ssl_updates_the_backbone_not_the_classifier(tmp_path):
    torch.manual_seed(0)
    model = DemoCNN(4)
    head_before = model.head.weight.detach().clone()
    conv_before = model.features[0][0].weight.detach().clone()
    images = digits_pil_images("train", channels=3)[:64]
    tf = T.Compose([T.RandomResizedCrop(8, scale=(0.5, 1.0), antialias=True), T.ToTensor()])
    cfg = TrainConfig(out_dir=str(tmp_path / "ssl"), epochs=1, batch_size=32, lr=1e-2, device="cpu", progress=False)
    result = train_ssl(model, TwoViewDataset(images, tf), cfg, proj_hidden=16, proj_dim=8)
    assert math.isfinite(result.history[0]["train_loss"])
    assert (tmp_path / "ssl" / "best.safetensors").is_file()
    assert torch.equal(model.head.weight, head_before)
    assert not torch.equal(model.features[0][0].weight, conv_before)
    assert model.head.weight.requires_grad  # unfrozen again for the supervised stage
    assert SSLModel(model, proj_dim=8)(torch.randn(3, 3, 8, 8)).shape == (3, 8)


def _dino_layout(model: nn.Module) -> dict:
    """A DINO training checkpoint built from ``model``: module.backbone.* plus the DINO projection head."""
    head = set(classifier_keys(model))
    backbone = {f"module.backbone.{k}": v.clone() for k, v in model.state_dict().items() if k not in head}
    dino_head = {
        "module.head.mlp.0.weight": torch.randn(16, 32),
        "module.head.mlp.0.bias": torch.randn(16),
        "module.head.last_layer.weight_g": torch.randn(64, 1),
        "module.head.last_layer.weight_v": torch.randn(64, 16),
    }
    student = {k: torch.zeros_like(v) for k, v in backbone.items()}
    return {"student": student, "teacher": {**backbone, **dino_head}, "epoch": 100}


def test_dino_checkpoint_loads_strictly_with_identical_features(tmp_path):
    torch.manual_seed(0)
    source = timm.create_model("test_vit", num_classes=0, img_size=32)
    path = tmp_path / "checkpoint.pth"
    torch.save(_dino_layout(source), path)
    target = timm.create_model("test_vit", num_classes=7, img_size=32)
    kept = load_ssl_weights(target, path)
    assert kept == ["head.bias", "head.weight"]
    x = torch.randn(2, 3, 32, 32)
    source.eval(), target.eval()
    torch.testing.assert_close(penultimate_features(target, x), source(x))

    broken = _dino_layout(source)
    broken["teacher"]["module.backbone.extra.weight"] = torch.zeros(1)
    del broken["teacher"]["module.backbone.norm.weight"]
    with pytest.raises(KeyMappingError) as err:
        load_ssl_weights(target, broken["teacher"])
    assert "extra.weight" in str(err.value) and "norm.weight" in str(err.value)
