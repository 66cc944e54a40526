"""Shared fixtures: tiny EAT sizes, real spoken keywords (espeak-ng) written as audio files, and the miniature
ESC-50, UrbanSound8K and SpeechCommands copies (``miil.audio.miniature``)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from miil.audio.data.speech import keyword_dataset, make_speakers
from miil.audio.miniature import make_audioset, make_esc50, make_speech_commands, make_urbansound8k

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


@pytest.fixture(scope="session")
def esc50_root(tmp_path_factory):
    """``meta/esc50.csv`` and ``audio/``: 5 folds x 5 classes, one 5-s take each."""
    return make_esc50(tmp_path_factory.mktemp("miniature") / "ESC-50-master", takes=1)


@pytest.fixture(scope="session")
def urbansound8k_root(tmp_path_factory):
    """``metadata/UrbanSound8K.csv`` and ``audio/fold1..10/``: 5 classes, one clip per fold."""
    return make_urbansound8k(tmp_path_factory.mktemp("miniature") / "UrbanSound8K")


@pytest.fixture(scope="session")
def speech_commands_root(tmp_path_factory):
    """4 words x 8 speakers, ``validation_list.txt`` / ``testing_list.txt`` (one speaker each), background noise."""
    return make_speech_commands(tmp_path_factory.mktemp("miniature") / "speech_commands_v0.02")


@pytest.fixture(scope="session")
def audioset_root(tmp_path_factory):
    """``metadata/*.csv`` and ``audio/{balanced_train,eval}_segments/Y<YTID>.flac``: 8 + 4 clips of 2 s."""
    return make_audioset(tmp_path_factory.mktemp("miniature") / "audioset", train_clips=8, eval_clips=4, seconds=2.0)
