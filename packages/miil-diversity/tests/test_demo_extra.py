"""Without miil-diversity's ``demo`` extra (scikit-image's LFW faces) the demo data says which extra to install."""

import sys

import pytest

from miil.core.errors import MissingExtraError
from miil.diversity.demo import lfw_face_dataset


def test_lfw_faces_without_scikit_image_name_the_demo_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)  # how an uninstalled package looks to the import system
    with pytest.raises(MissingExtraError, match=r"LFW faces .* pip install 'miil-diversity\[demo\]'"):
        lfw_face_dataset()
