"""Shared fixtures: tiny albums of real digit photos written to disk in the ML-CUFED / PETA layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from miil.core.data import load_digits_split

EVENTS = ("Birthday", "Graduation", "Show")


def write_album(folder: Path, images, *, suffix: str = ".png") -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, img in enumerate(images):
        name = f"{i:03d}_photo{suffix}"
        img.save(folder / name)
        names.append(name)
    return names


@pytest.fixture(scope="session")
def digit_photos():
    """Real digit photos as 16x16 RGB PIL images, the first 12 of each digit."""
    images, labels = load_digits_split("train")
    by_digit: dict[int, list] = {}
    for digit in range(10):
        for i in np.flatnonzero(labels == digit)[:12]:
            by_digit.setdefault(digit, []).append(Image.fromarray(images[i]).resize((16, 16)).convert("RGB"))
    return by_digit


@pytest.fixture
def folder_albums(tmp_path, digit_photos) -> Path:
    """``albums/<event>/<album_id>/*.png``: 3 events x 2 albums of 3-6 photos; event i shows digit i mostly."""
    root = tmp_path / "albums"
    for e, event in enumerate(EVENTS):
        for a in range(2):
            n = 3 + a * 3
            photos = [digit_photos[e][a * 6 + j] for j in range(n - 1)] + [digit_photos[9][e * 2 + a]]
            write_album(root / event / f"{e}{a}_album@N0{a}", photos)
    return root


@pytest.fixture
def cufed_root(tmp_path, digit_photos) -> Path:
    """ML-CUFED layout: ``images/<album_id>/*.jpg``, ``event_type.json`` (multi-label), ``image_importance.json``."""
    root = tmp_path / "ml_cufed"
    labels, importance = {}, {}
    for a in range(4):
        album = f"{a}_5573744{a}@N02"
        events = [EVENTS[a % 3]] + ([EVENTS[(a + 1) % 3]] if a == 3 else [])
        names = write_album(root / "images" / album, [digit_photos[a % 3][j] for j in range(5)], suffix=".jpg")
        labels[album] = events
        importance[album] = [[i, f"{album}/{n[:-4]}", float(i % 3) / 2] for i, n in enumerate(names)]
    (root / "event_type.json").write_text(json.dumps(labels))
    (root / "image_importance.json").write_text(json.dumps(importance))
    (root / "train_split.txt").write_text("\n".join(sorted(labels)[:3]) + "\n")
    (root / "test_split.txt").write_text("# held out\n" + sorted(labels)[3] + "\n")
    return root
