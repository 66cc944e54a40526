"""Shared fixtures: a miniature ImageNet of real digits over real photographs, and a tiny teacher checkpoint."""

from pathlib import Path

import pytest
import timm
import torch

from miil.core.io import save_safetensors
from miil.core.miniature import make_imagenet

CLASSES = 3


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny models on a shared 2-core machine: one thread avoids OpenMP contention that makes steps 10x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def imagenet_root(tmp_path_factory) -> Path:
    """Miniature ImageNet (``miil.core.miniature.make_imagenet``): ``train/<wnid>/*.JPEG`` (3 classes x 8) and
    ``val/<wnid>/*.JPEG`` (3 x 4), real digits over real photographs, 16-24 px."""
    root = tmp_path_factory.mktemp("miniature") / "imagenet"
    return make_imagenet(root, num_classes=CLASSES, train_per_class=8, val_per_class=4, min_size=16, max_size=24)


@pytest.fixture(scope="session")
def teacher_checkpoint(tmp_path_factory) -> Path:
    """Weights of a timm ``test_resnet`` with 3 classes, as a safetensors file (a stand-in for a trained teacher)."""
    torch.manual_seed(123)
    model = timm.create_model("test_resnet", num_classes=CLASSES)
    path = tmp_path_factory.mktemp("teacher") / "teacher.safetensors"
    save_safetensors(model.state_dict(), path)
    return path


def randomize_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every batch norm non-trivial statistics and affine parameters, so that fusion is really tested."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            if m.weight is not None:
                m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return model


@pytest.fixture
def bn_randomizer():
    return randomize_bn
