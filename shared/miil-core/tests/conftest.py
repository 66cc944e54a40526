"""Shared fixtures: miniature COCO-2014, OpenImages V6 and ImageNet copies, built once per session
(``miil.core.miniature``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from miil.core.miniature import make_coco2014, make_imagenet, make_openimages


@pytest.fixture(scope="session")
def coco_root(tmp_path_factory) -> Path:
    """``train2014/``, ``val2014/``, ``annotations/instances_{train,val}2014.json`` (48 + 24 annotated images)."""
    return make_coco2014(tmp_path_factory.mktemp("miniature") / "coco")


@pytest.fixture(scope="session")
def imagenet_root(tmp_path_factory) -> Path:
    """``train/<wnid>/*.JPEG`` (10 classes x 8) and ``val/<wnid>/*.JPEG`` (10 x 4)."""
    return make_imagenet(tmp_path_factory.mktemp("miniature") / "imagenet")


@pytest.fixture(scope="session")
def openimages_root(tmp_path_factory) -> Path:
    """The V6 release layout (official label CSVs, ``train/``, ``validation/``, class files) plus CSL's ``data.csv``."""
    return make_openimages(tmp_path_factory.mktemp("miniature") / "openimages")
