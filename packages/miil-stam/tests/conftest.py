"""Shared fixtures: tiny STAM configs and short real-content clips encoded with PyAV."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from miil.core.cli import main
from miil.stam import STAM
from miil.stam.data import MOTION_CLASSES, make_motion_videos

TINY_SPATIAL = {"img_size": 32, "patch_size": 16, "embed_dim": 32, "depth": 1, "num_heads": 2}
TINY_ARGS = [
    "--num-classes", "0", "--model", "vit_tiny_patch16_224", "--model-kwargs", json.dumps(TINY_SPATIAL),
    "--temporal-depth", "1", "--temporal-heads", "2", "--temporal-mlp-dim", "32", "--img-size", "32",
    "--batch-size", "2", "--amp", "false", "--progress", "false", "--device", "cpu", "--warmup-epochs", "0",
]  # fmt: skip


@pytest.fixture
def tiny_stam():
    """Factory of STAMs small enough for CPU tests: one-block ViT on 32x32 frames, one temporal layer."""

    def make(**overrides) -> STAM:
        kwargs = dict(
            spatial="vit_tiny_patch16_224",
            spatial_kwargs=TINY_SPATIAL,
            num_classes=5,
            num_frames=8,
            temporal_depth=1,
            temporal_heads=4,
            temporal_mlp_dim=64,
        )
        kwargs.update(overrides)
        return STAM(**kwargs)

    return make


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def motion_root(tmp_path_factory) -> Path:
    """root/<direction>/*.mp4: 4 classes x 3 clips of 16 frames, 32x32, 8 fps (real digits over real photos)."""
    root = tmp_path_factory.mktemp("motion")
    make_motion_videos(root, split="train", per_class=3, seed=0)
    return root


@pytest.fixture(scope="session")
def motion_classes() -> list[str]:
    return list(MOTION_CLASSES)


@pytest.fixture(scope="session")
def tiny_cli_args() -> list[str]:
    """``miil stam train`` options for a tiny model on 32x32 frames, one process on CPU."""
    return list(TINY_ARGS)


def train_args(root: Path, out: Path) -> list[str]:
    # STAM-8 samples at 0.8 fps: the 2 s clips are far shorter than its 10 s span, so every clip is padded.
    return ["stam", "train", "--recipe", "stam-8", "--data-format", "folder", "--data-root", str(root),
            "--train-split", ".", "--val-split", ".", "--out-dir", str(out), "--epochs", "1", *TINY_ARGS]  # fmt: skip


@pytest.fixture(scope="session")
def stam_train_args():
    """``train_args(root, out)``: the command line of a one-epoch tiny STAM-8 run."""
    return train_args


@pytest.fixture(scope="session")
def trained_run(motion_root, tmp_path_factory) -> Path:
    """A finished one-epoch run of a tiny STAM-8 on the motion clips (``miil stam train``)."""
    out = tmp_path_factory.mktemp("runs") / "stam8"
    assert main(train_args(motion_root, out)) == 0
    return out
