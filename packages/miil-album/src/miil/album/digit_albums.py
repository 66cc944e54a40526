"""Albums of real handwritten digits whose event is decided by a few relevant photos among distractors.

Embedded real data for the demo and tests (no downloads): scikit-learn's 1,797 real 8x8 digits, split into train
and test digits by the core (``miil.core.data.load_digits_split``), so held-out albums are built from digits no model
was trained on. Every album has ``size_range`` photos: ``relevant_per_album`` of them show a *relevant* digit
(0, 1 or 2 by default), the others are distractors (any other digit). The album's event is the sum of its relevant
digits modulo the number of relevant digits: it depends on the *combination* of the relevant photos, as an event
("a birthday" = cake + guests + presents) depends on which photos occur together, and not on any photo alone.
Which photos are relevant is known, so the importance a model assigns to the photos can be scored against it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from miil.core.data import load_digits_split

__all__ = ["DigitAlbums"]


class DigitAlbums(Dataset):
    """Seeded albums of real digits; samples are ``(images [n, 1, 8, 8] in [0, 1], target [C], index)``.

    Args:
        split: "train" or "test" digits.
        num_albums: Number of albums.
        seed: Seed of the album composition.
        relevant_digits: Digits that decide the event; the others are distractors. ``C = len(relevant_digits)``.
        relevant_per_album: Relevant photos per album.
        size_range: Smallest and largest album (photos), inclusive.
    """

    def __init__(
        self,
        split: str,
        num_albums: int,
        *,
        seed: int = 0,
        relevant_digits: Sequence[int] = (0, 1, 2),
        relevant_per_album: int = 2,
        size_range: tuple[int, int] = (8, 12),
    ):
        lo, hi = size_range
        if not relevant_per_album <= lo <= hi:
            raise ValueError(f"size_range {size_range} must satisfy relevant_per_album <= min <= max")
        relevant = [int(d) for d in relevant_digits]
        if len(set(relevant)) < 2 or not all(0 <= d <= 9 for d in relevant):
            raise ValueError(f"relevant_digits must be at least two distinct digits 0..9, got {relevant_digits}")
        images, labels = load_digits_split(split)
        self.pixels = torch.from_numpy(images).float().div_(255.0).unsqueeze(1)
        self.digit_labels = labels
        self.classes = [f"sum%{len(relevant)}={c}" for c in range(len(relevant))]
        rng = np.random.default_rng(seed)
        by_digit = {d: np.flatnonzero(labels == d) for d in range(10)}
        distractors = np.flatnonzero(~np.isin(labels, relevant))
        self.albums: list[np.ndarray] = []
        self.relevance: list[np.ndarray] = []
        events = []
        for _ in range(num_albums):
            n = int(rng.integers(lo, hi + 1))
            digits = rng.choice(relevant, size=relevant_per_album)
            photos = [int(rng.choice(by_digit[int(d)])) for d in digits]
            photos += rng.choice(distractors, size=n - relevant_per_album, replace=False).tolist()
            is_relevant = np.array([1.0] * relevant_per_album + [0.0] * (n - relevant_per_album))
            order = rng.permutation(n)
            self.albums.append(np.asarray(photos)[order])
            self.relevance.append(is_relevant[order])
            events.append(int(sum(relevant.index(int(d)) for d in digits)) % len(relevant))
        self.events = torch.tensor(events)
        self.targets = torch.nn.functional.one_hot(self.events, len(relevant)).float()

    def __len__(self) -> int:
        return len(self.albums)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        return self.pixels[torch.from_numpy(self.albums[index])], self.targets[index], index
