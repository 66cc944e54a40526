"""Shared fixtures: a tiny ImageNet-style folder of real digits, and a tiny teacher checkpoint."""

from pathlib import Path

import pytest
import timm
import torch

from miil.core.data import digits_pil_images
from miil.core.io import save_safetensors

CLASSES = 3


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny models on a shared 2-core machine: one thread avoids OpenMP contention that makes steps 10x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _write_split(root: Path, split: str, per_class: int) -> None:
    counts = dict.fromkeys(range(CLASSES), 0)
    source = "train" if split == "train" else "test"
    for img, label in digits_pil_images(source, image_size=16, channels=3):
        if label >= CLASSES or counts[label] >= per_class:
            continue
        folder = root / split / f"digit{label}"
        folder.mkdir(parents=True, exist_ok=True)
        img.save(folder / f"{split}_{counts[label]:03d}.png")
        counts[label] += 1


@pytest.fixture(scope="session")
def digits_root(tmp_path_factory) -> Path:
    """``root/train/digit{0,1,2}/*.png`` (8 each) and ``root/val/...`` (4 each): real 16x16 digits as RGB PNGs."""
    root = tmp_path_factory.mktemp("digits")
    _write_split(root, "train", 8)
    _write_split(root, "val", 4)
    return root


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
