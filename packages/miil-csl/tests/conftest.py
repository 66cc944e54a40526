"""Fixtures: tiny TResNets in the reference layout, and the miniature COCO-2014, OpenImages V6 and LVIS v1 copies."""

import re
from pathlib import Path

import pytest
import torch
from timm.models.tresnet import TResNet

from miil.core.miniature import make_coco2014, make_openimages
from miil.csl import MultiLabelClassifier
from miil.csl.miniature import make_lvis


def _tiny_tresnet():
    return TResNet(layers=[1, 1, 1, 1], num_classes=0, width_factor=0.25)


def _randomize(model):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(
                    torch.rand(t.shape, generator=g) + 0.5
                    if name.endswith(("bn.weight", "running_var"))
                    else torch.randn(t.shape, generator=g) * 0.1
                )


def _to_original_layout(model: MultiLabelClassifier) -> dict:
    """Write our weights with the reference TResNet's keys (InplaceABN layout), as its checkpoints store them."""
    out = {}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        if key.startswith("backbone."):
            k = key[len("backbone.") :]
            # timm ConvNormAct -> reference conv2d_ABN Sequential; the anti-aliased conv sits inside one more level.
            aa = re.match(r"body\.layer(\d)\.(\d+)\.(conv\d)\.", k)
            stride_block = (
                aa
                and aa.group(2) == "0"
                and aa.group(1) in "234"
                and (
                    (aa.group(1) == "2" and aa.group(3) == "conv1") or (aa.group(1) in "34" and aa.group(3) == "conv2")
                )
            )
            k = re.sub(r"(conv\d)\.conv", r"\1.0.0" if stride_block else r"\1.0", k)
            k = re.sub(r"(conv\d)\.bn", r"\1.0.1" if stride_block else r"\1.1", k)
            k = re.sub(r"downsample\.(\d+)\.conv", r"downsample.\1.0", k)
            k = re.sub(r"downsample\.(\d+)\.bn", r"downsample.\1.1", k)
            if re.search(r"(\.1|\.0\.1)\.weight$", k) and ("conv" in k or "downsample" in k):
                value = value - 1e-5  # InplaceABN stores w with scale |w| + eps
            out[k] = value
        elif key.startswith("head.embedding."):
            out[key.replace("head.embedding.", "head.fc.embedding_generator.0.")] = value
        elif key.startswith("head.fc."):
            out[key.replace("head.fc.", "head.fc.FC.")] = value
        else:
            out[key.replace("head.", "head.fc.")] = value
    return out


@pytest.fixture
def tiny_tresnet():
    return _tiny_tresnet


@pytest.fixture
def randomize():
    return _randomize


@pytest.fixture
def to_original_layout():
    return _to_original_layout


@pytest.fixture(autouse=True)
def _one_thread():
    # The tests run tiny models, for which intra-op threads only add synchronisation (and stall badly when the
    # CPU is shared with other jobs).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def coco_root(tmp_path_factory) -> Path:
    """Miniature COCO-2014: ``train2014/``, ``val2014/``, ``annotations/instances_*2014.json``."""
    return make_coco2014(tmp_path_factory.mktemp("miniature") / "coco")


@pytest.fixture(scope="session")
def openimages_root(tmp_path_factory) -> Path:
    """Miniature OpenImages V6: official human-verified label CSVs, class files, and the CSL ``data.csv`` layout."""
    return make_openimages(tmp_path_factory.mktemp("miniature") / "openimages")


@pytest.fixture(scope="session")
def lvis_root(tmp_path_factory) -> Path:
    """Miniature LVIS v1: ``annotations/lvis_v1_{train,val}.json`` beside ``train2017/`` and ``val2017/``."""
    return make_lvis(tmp_path_factory.mktemp("miniature") / "lvis")
