"""Miniature ML-CUFED, CUFED and PEC copies in their on-disk layouts: albums of real photographs with known events.

Paper: PETA (arXiv 2109.12499), section 4 evaluates on ML-CUFED (multi-label events with per-photo human importance
scores), CUFED (single-label) and PEC (14 events, albums in event folders). The layouts are those of
:mod:`miil.album.data.layouts`.

Content (DATA.md, "albums"): an album's event is decided by a few *relevant* photos among distractors. Event ``e``
(the ``e``-th of the chosen event names) is shown by real handwritten digit ``e`` over a real photograph
(:mod:`miil.core.miniature.render`); distractor photos show digits that belong to no event. A multi-label album has
relevant photos of two events. The human importance of a photo is high for relevant photos and low for distractors,
so a model's learned importance can be scored against it. Train albums use the train digits and test albums the
disjoint test digits. The generators write atomically, reuse a finished copy made with the same settings, and give
the same files for the same seed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from miil.core.miniature import build_miniature, generator_settings, render_single_digit_photo, save_image

__all__ = ["CUFED_EVENTS", "PEC_EVENTS", "make_cufed", "make_ml_cufed", "make_pec"]

#: The miniature's CUFED / ML-CUFED events (four of the 23; event ``e`` is shown by digit ``e``).
CUFED_EVENTS = ("Birthday", "Graduation", "Show", "ThemePark")
#: The 14 events of PEC (Bossard et al., ECCV 2013), as its folder names.
PEC_EVENTS = (
    "birthday", "children_birthday", "christmas", "concert", "cruise", "easter", "exhibition", "graduation",
    "halloween", "hiking", "road_trip", "saint_patricks_day", "skiing", "wedding",
)  # fmt: skip


def _albums(
    rng: np.random.Generator, num_events: int, per_event: int, multi_label_fraction: float, size_range: tuple[int, int]
) -> list[tuple[list[int], list[int]]]:
    """Per album: its events, and per photo the event it shows (-1: a distractor). Events are dealt evenly."""
    lo, hi = size_range
    out = []
    for e in range(num_events):
        for _ in range(per_event):
            events = [e]
            if rng.random() < multi_label_fraction:
                events.append(int((e + rng.integers(1, num_events)) % num_events))
            n = int(rng.integers(lo, hi + 1))
            relevant = [events[i % len(events)] for i in range(max(2, len(events) * 2))]
            photos = relevant + [-1] * (n - len(relevant))
            out.append((events, rng.permutation(photos).tolist()))
    return out


def _photo(
    shows: int, num_events: int, split: str, rng: np.random.Generator, size: tuple[int, int]
) -> tuple[np.ndarray, float]:
    if shows >= 0:
        digit, score = shows, float(rng.uniform(0.7, 1.0))
    else:
        digit, score = int(rng.integers(num_events, 10)), float(rng.uniform(0.0, 0.35))
    pixels, _ = render_single_digit_photo(digit, split, rng, height=size[0], width=size[1])
    return pixels, round(score, 3)


def _check(events: Sequence[str], limit: int) -> None:
    if not 2 <= len(events) <= limit or len(set(events)) != len(events):
        raise ValueError(f"need 2 to {limit} distinct event names, got {list(events)}")


def _write_cufed(root: Path, seed: int, events: Sequence[str], train: int, test: int, multi: float, sizes) -> None:
    rng = np.random.default_rng([seed, 1883])
    labels: dict[str, list[str]] = {}
    importance: dict[str, list[list[object]]] = {}
    splits: dict[str, list[str]] = {"train": [], "test": []}
    counter = 0
    for split, per_event, digits in (("train", train, "train"), ("test", test, "test")):
        for album_events, photos in _albums(rng, len(events), per_event, multi, sizes):
            album = f"{counter}_{int(rng.integers(10**7, 10**8))}@N0{int(rng.integers(0, 9))}"
            counter += 1
            entries = []
            for index, shows in enumerate(photos):
                photo = str(int(rng.integers(10**9, 10**10)))
                size = (int(rng.integers(48, 81)), int(rng.integers(48, 81)))
                pixels, score = _photo(shows, len(events), digits, rng, size)
                save_image(pixels, root / "images" / album / f"{photo}.jpg")
                entries.append([index, f"{album}/{photo}", score])
            labels[album] = [events[e] for e in album_events]
            importance[album] = entries
            splits[split].append(album)
    (root / "event_type.json").write_text(json.dumps(labels, indent=1), encoding="utf-8")
    (root / "image_importance.json").write_text(json.dumps(importance), encoding="utf-8")
    for split, albums in splits.items():
        (root / f"{split}_split.txt").write_text("".join(f"{a}\n" for a in albums), encoding="utf-8")


def make_ml_cufed(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    events: Sequence[str] = CUFED_EVENTS,
    train_albums_per_event: int = 4,
    test_albums_per_event: int = 2,
    multi_label_fraction: float = 0.3,
    album_size: tuple[int, int] = (6, 12),
) -> Path:
    """Write a miniature ML-CUFED (multi-label events, human importance) and return ``root``.

    Layout written (ML-CUFED as distributed, plus this miniature's split lists)::

        root/
          images/<album id>/<photo id>.jpg      album ids like "0_55737440@N02", photo ids Flickr's
          event_type.json                       {album id: [event, ...]}
          image_importance.json                 {album id: [[index, "<album id>/<photo id>", score], ...]}
          train_split.txt, test_split.txt       one album id per line

    Args:
        root: Output folder (absent, empty, or an earlier miniature).
        seed: Seed of everything drawn.
        events: Event names (2 to 10; event ``e`` is shown by digit ``e``, distractors by the other digits).
        train_albums_per_event: Train albums whose main event is each event.
        test_albums_per_event: Test albums per event.
        multi_label_fraction: Share of albums with a second event.
        album_size: Smallest and largest number of photos per album.
    """
    params = generator_settings(locals())
    _check(events, 9)

    def build(out: Path) -> None:
        _write_cufed(out, seed, events, train_albums_per_event, test_albums_per_event, multi_label_fraction, album_size)

    return build_miniature(root, "ml_cufed", params, build)


def make_cufed(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    events: Sequence[str] = CUFED_EVENTS,
    train_albums_per_event: int = 4,
    test_albums_per_event: int = 2,
    album_size: tuple[int, int] = (6, 12),
) -> Path:
    """Write a miniature CUFED (the single-label version: one event per album) and return ``root``.

    The layout is ML-CUFED's (see :func:`make_ml_cufed`); every list in ``event_type.json`` has one event.

    Args:
        root: Output folder (absent, empty, or an earlier miniature).
        seed: Seed of everything drawn.
        events: Event names (2 to 9).
        train_albums_per_event: Train albums per event.
        test_albums_per_event: Test albums per event.
        album_size: Smallest and largest number of photos per album.
    """
    params = generator_settings(locals())
    _check(events, 9)

    def build(out: Path) -> None:
        _write_cufed(out, seed, events, train_albums_per_event, test_albums_per_event, 0.0, album_size)

    return build_miniature(root, "cufed", params, build)


def make_pec(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    events: Sequence[str] = PEC_EVENTS[:4],
    train_albums_per_event: int = 4,
    test_albums_per_event: int = 2,
    album_size: tuple[int, int] = (6, 12),
) -> Path:
    """Write a miniature PEC (albums in event folders, single-label) and return ``root``.

    Layout written (PEC's event folders, plus this miniature's split lists)::

        root/
          <event>/<album id>/<photo id>.jpg     events named as PEC's folders (``PEC_EVENTS``)
          train_split.txt, test_split.txt       one "<event>/<album id>" per line

    Args:
        root: Output folder (absent, empty, or an earlier miniature).
        seed: Seed of everything drawn.
        events: Event names (2 to 9, by default the first four of PEC's 14).
        train_albums_per_event: Train albums per event.
        test_albums_per_event: Test albums per event.
        album_size: Smallest and largest number of photos per album.
    """
    params = generator_settings(locals())
    _check(events, 9)

    def build(out: Path) -> None:
        rng = np.random.default_rng([seed, 807])
        for split, per_event, digits in (
            ("train", train_albums_per_event, "train"),
            ("test", test_albums_per_event, "test"),
        ):
            listed = []
            for album_events, photos in _albums(rng, len(events), per_event, 0.0, album_size):
                event = events[album_events[0]]
                album = f"{int(rng.integers(10**7, 10**8))}@N0{int(rng.integers(0, 9))}"
                for shows in photos:
                    size = (int(rng.integers(48, 81)), int(rng.integers(48, 81)))
                    pixels, _ = _photo(shows, len(events), digits, rng, size)
                    save_image(pixels, out / event / album / f"{int(rng.integers(10**9, 10**10))}.jpg")
                listed.append(f"{event}/{album}")
            (out / f"{split}_split.txt").write_text("".join(f"{a}\n" for a in listed), encoding="utf-8")

    return build_miniature(root, "pec", params, build)
