"""Shared fixtures: miniature ML-CUFED (``images/`` + JSON labels) and PEC (event folders) copies of real photos.

The datasets come from ``miil.album.miniature`` (built once per session); each test gets its own copy, since some
tests break files on purpose.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from miil.album.miniature import CUFED_EVENTS, PEC_EVENTS, make_ml_cufed, make_pec

#: Events of the test copies, in class order (sorted).
CUFED_CLASSES = sorted(CUFED_EVENTS)
PEC_CLASSES = sorted(PEC_EVENTS[:3])


@pytest.fixture(scope="session")
def _cufed_master(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("miniature") / "ml_cufed"
    return make_ml_cufed(root, train_albums_per_event=2, test_albums_per_event=1, album_size=(5, 8))


@pytest.fixture(scope="session")
def _pec_master(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("miniature") / "pec"
    return make_pec(root, events=PEC_EVENTS[:3], train_albums_per_event=2, test_albums_per_event=1, album_size=(5, 8))


@pytest.fixture
def cufed_root(tmp_path, _cufed_master) -> Path:
    """ML-CUFED layout: ``images/<album_id>/*.jpg``, ``event_type.json``, ``image_importance.json``, split lists;
    4 events x (2 train + 1 test) albums of 5-8 photos, some albums with two events."""
    return Path(shutil.copytree(_cufed_master, tmp_path / "ml_cufed"))


@pytest.fixture
def folder_albums(tmp_path, _pec_master) -> Path:
    """PEC layout: ``<event>/<album_id>/*.jpg``; 3 events x (2 train + 1 test) albums of 5-8 photos."""
    return Path(shutil.copytree(_pec_master, tmp_path / "pec"))


class CreatesFile:
    """Unpickled, this would create a file: the payload of a malicious checkpoint (see miil-core's test_io)."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))
