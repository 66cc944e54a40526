"""Without miil-diversity's ``demo`` extra (scikit-image's LFW faces) the demo data says which extra to install."""

import sys

import pytest

from miil.core.errors import MissingExtraError
from miil.diversity.demo import lfw_face_dataset


def _uninstall(monkeypatch, package: str) -> None:
    """Make ``package`` look uninstalled to the import system, also where a submodule was already imported."""
    for name in [m for m in list(sys.modules) if m.startswith(package + ".")] + [package]:
        monkeypatch.setitem(sys.modules, name, None)


def test_lfw_faces_without_scikit_image_name_the_demo_extra(monkeypatch):
    _uninstall(monkeypatch, "skimage")
    with pytest.raises(MissingExtraError, match=r"LFW faces .* pip install 'miil-diversity\[demo\]'"):
        lfw_face_dataset()
