"""Shared fixtures: tiny EAT sizes and real spoken keywords (espeak-ng) written as audio files."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from miil.audio.data.speech import keyword_dataset, make_speakers

# A tiny EAT with the real structure: 2 + 2 down-sampling stages (stride 16), dilated blocks, 1 layer.
TINY = dict(base_channels=4, embed_dim=16, depth=1, num_heads=2, mlp_dim=32, ds_factors=(2, 2))
TINY_LEN = 1024  # samples; >= the tiny model's minimum length (505)


@pytest.fixture(scope="session")
def keywords():
    """Three keywords spoken by eight synthetic speakers: (clips, labels, speakers, sample_rate, words)."""
    words = ("yes", "no", "stop")
    clips, labels, names, sr = keyword_dataset(make_speakers(8, seed=1), words=words)
    return clips, labels, names, sr, words


@pytest.fixture(scope="session")
def keyword_folders(tmp_path_factory, keywords):
    """``train/<word>/*.wav`` and ``val/<word>/*.wav`` (held-out speakers) at the synthesiser's 22.05 kHz."""
    clips, labels, names, sr, words = keywords
    root = tmp_path_factory.mktemp("keywords")
    speakers = sorted(set(names))
    held_out = set(speakers[:2])
    for i, (clip, label, name) in enumerate(zip(clips, labels, names)):
        split = "val" if name in held_out else "train"
        folder = root / split / words[label]
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{i:03d}.wav", clip, sr, subtype="PCM_16")
    return root


def sine(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
