"""Miniature ESC-50, UrbanSound8K, SpeechCommands and AudioSet copies in their real on-disk formats, from real sounds.

Paper: EAT (arXiv 2204.11479), Sec. 4 trains and evaluates on ESC-50 (5-fold cross-validation), UrbanSound8K
(10-fold), SpeechCommands V2 and AudioSet. The sounds are real recordings shipped in the pygame-ce wheel
(``pygame/examples/data``: an explosion, a car door, a punch, a whoosh, a house-music loop, a siren-like sweep),
placed at random offsets with random gain and speed, and speech synthesised offline with espeak-ng
(:mod:`miil.audio.data.speech`); a class is one source sound (or one word), so the labels are learnable from raw
waveforms. The generators write atomically, reuse a finished copy made with the same settings, and give the same
files for the same seed, with one exception: espeak-ng carries its voice state from one utterance to the next, so
the speech waveforms of :func:`make_speech_commands` and :func:`make_audioset` change slightly with what the process
synthesised before (same words, speakers, lengths, placement and labels; other sample values).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

from miil.core.miniature import build_miniature, csv_text, generator_settings

from .data.speech import Speaker, keyword_dataset, make_speakers
from .io import resample_audio

__all__ = [
    "AUDIOSET_CLASSES",
    "ESC50_CLASSES",
    "URBANSOUND8K_CLASSES",
    "make_audioset",
    "make_esc50",
    "make_speech_commands",
    "make_urbansound8k",
    "source_sound",
]

#: ``(target, category, pygame sound)`` of the ESC-50 miniature; targets and categories are ESC-50's.
ESC50_CLASSES = (
    (21, "sneezing", "whiff"),
    (22, "clapping", "punch"),
    (30, "door_wood_knock", "car_door"),
    (42, "siren", "secosmic_lo"),
    (48, "fireworks", "boom"),
)
_ESC10 = {0, 1, 10, 11, 12, 20, 21, 38, 40, 41}
#: ``(classID, class, pygame sound)`` of the UrbanSound8K miniature; ids and names are UrbanSound8K's.
URBANSOUND8K_CLASSES = (
    (0, "air_conditioner", "whiff"),
    (3, "dog_bark", "car_door"),
    (6, "gun_shot", "boom"),
    (8, "siren", "secosmic_lo"),
    (9, "street_music", "house_lo"),
)
#: ``(mid, display_name, source)`` of the AudioSet miniature (source: a pygame sound, or "speech" for espeak-ng).
AUDIOSET_CLASSES = (
    ("/m/09x0r", "Speech", "speech"),
    ("/m/04rlf", "Music", "house_lo"),
    ("/m/014zdl", "Explosion", "boom"),
    ("/m/03kmc9", "Siren", "secosmic_lo"),
    ("/m/02dgv", "Door", "car_door"),
    ("/m/07rqsjt", "Whoosh, swoosh, swish", "whiff"),
)


@lru_cache(maxsize=8)
def source_sound(name: str) -> tuple[np.ndarray, int]:
    """One of pygame-ce's example sounds (``boom``, ``car_door``, ``punch``, ``whiff``, ``house_lo``, ``secosmic_lo``)
    as mono float32 and its rate, read as a file (pygame itself is not imported)."""
    spec = importlib.util.find_spec("pygame")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("pygame-ce is not installed (pip install pygame-ce): it carries the example sounds")
    path = Path(next(iter(spec.submodule_search_locations))) / "examples" / "data" / f"{name}.wav"
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    return x.mean(1), sr


def _event(name: str, rng: np.random.Generator, sample_rate: int, max_seconds: float) -> np.ndarray:
    """The source sound at ``sample_rate``, sped up or slowed down by up to 15%, cropped to ``max_seconds``."""
    x, sr = source_sound(name)
    x = resample_audio(x, sr, max(1000, int(round(sample_rate * rng.uniform(0.85, 1.15)))))
    longest = int(max_seconds * sample_rate)
    if len(x) > longest:
        start = int(rng.integers(len(x) - longest + 1))
        x = x[start : start + longest]
    peak = float(np.abs(x).max()) or 1.0
    return (x / peak * rng.uniform(0.3, 0.9)).astype(np.float32)


def _place(canvas: np.ndarray, event: np.ndarray, rng: np.random.Generator) -> None:
    start = int(rng.integers(max(1, len(canvas) - len(event) + 1)))
    piece = event[: len(canvas) - start]
    canvas[start : start + len(piece)] += piece


def make_esc50(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    takes: int = 2,
    sample_rate: int = 44100,
    seconds: float = 5.0,
) -> Path:
    """Write a miniature ESC-50 (``ESC-50-master`` as released) and return ``root``.

    Layout written::

        root/
          meta/esc50.csv      filename,fold,target,category,esc10,src_file,take   (sorted by file name)
          audio/<fold>-<src_file>-<take>-<target>.wav                              5 s, 44.1 kHz, mono, 16-bit

    As in ESC-50, every clip lasts exactly 5 s, events shorter than that are padded with digital silence, the takes
    (A, B, ...) cut from one source recording share a fold, and targets are the 50-class indices, so this 5-class copy
    has non-contiguous targets (:data:`ESC50_CLASSES`); ``esc10`` marks the ESC-10 subset.

    Args:
        root: Output folder (absent, empty, or an earlier miniature).
        seed: Seed of everything drawn.
        takes: Clips (takes of one source recording) per class and fold.
        sample_rate: Sampling rate of the files.
        seconds: Clip length.
    """
    params = generator_settings(locals())

    def build(out: Path) -> None:
        rng = np.random.default_rng([seed, 50])
        rows = []
        length = int(round(seconds * sample_rate))
        for fold in range(1, 6):
            for target, category, sound in ESC50_CLASSES:
                src_file = int(rng.integers(1000, 300_000))
                for t in range(takes):
                    clip = np.zeros(length, dtype=np.float32)
                    for _ in range(int(rng.integers(1, 4))):  # an event happens one to three times
                        _place(clip, _event(sound, rng, sample_rate, seconds / 2), rng)
                    name = f"{fold}-{src_file}-{'ABCDEFGH'[t]}-{target}.wav"
                    (out / "audio").mkdir(parents=True, exist_ok=True)
                    sf.write(out / "audio" / name, np.clip(clip, -1, 1), sample_rate, subtype="PCM_16")
                    rows.append([name, fold, target, category, str(target in _ESC10), src_file, "ABCDEFGH"[t]])
        rows.sort(key=lambda r: r[0])
        header = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
        (out / "meta").mkdir(parents=True, exist_ok=True)
        (out / "meta" / "esc50.csv").write_text(csv_text([header, *rows]), encoding="utf-8")

    return build_miniature(root, "esc50", params, build)


#: (rate, channels, subtype) of UrbanSound8K clips: the set keeps the Freesound uploads' formats.
_US8K_FORMATS = (
    (44100, 2, "PCM_16"),
    (48000, 2, "PCM_24"),
    (22050, 1, "PCM_16"),
    (96000, 2, "PCM_24"),
    (11025, 1, "PCM_U8"),
    (44100, 1, "PCM_32"),
    (8000, 1, "PCM_16"),
)


def make_urbansound8k(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    clips_per_fold: int = 1,
    max_seconds: float = 4.0,
) -> Path:
    """Write a miniature UrbanSound8K and return ``root``.

    Layout written::

        root/
          metadata/UrbanSound8K.csv    slice_file_name,fsID,start,end,salience,fold,classID,class
          audio/fold<k>/<fsID>-<classID>-<occurrenceID>-<sliceID>.wav      k = 1..10

    As in UrbanSound8K, clips last at most 4 s and keep the formats of their uploads (sample rates from 8 to 96 kHz,
    mono or stereo, 8-, 16-, 24- or 32-bit samples); ``start``/``end`` locate the slice in its recording and
    ``salience`` is 1 (foreground) or 2 (background). The five classes keep their UrbanSound8K ids, which are not
    contiguous (:data:`URBANSOUND8K_CLASSES`).

    Args:
        root: Output folder (absent, empty, or an earlier miniature).
        seed: Seed of everything drawn.
        clips_per_fold: Clips per class and fold.
        max_seconds: Longest clip.
    """
    params = generator_settings(locals())

    def build(out: Path) -> None:
        rng = np.random.default_rng([seed, 8732])
        rows = []
        for fold in range(1, 11):
            for class_id, name, sound in URBANSOUND8K_CLASSES:
                for _ in range(clips_per_fold):
                    rate, channels, subtype = _US8K_FORMATS[int(rng.integers(len(_US8K_FORMATS)))]
                    seconds = float(rng.uniform(1.0, max_seconds))
                    clip = np.zeros(int(seconds * rate), dtype=np.float32)
                    salience = int(rng.integers(1, 3))
                    clip += rng.normal(scale=0.01, size=clip.size).astype(np.float32)  # street background
                    event = _event(sound, rng, rate, seconds) * (1.0 if salience == 1 else 0.4)
                    _place(clip, event, rng)
                    data = np.stack([clip, clip * rng.uniform(0.7, 1.0)], 1) if channels == 2 else clip
                    fs_id, occurrence, slice_id = int(rng.integers(100, 200_000)), int(rng.integers(0, 5)), 0
                    file_name = f"{fs_id}-{class_id}-{occurrence}-{slice_id}.wav"
                    folder = out / "audio" / f"fold{fold}"
                    folder.mkdir(parents=True, exist_ok=True)
                    sf.write(folder / file_name, np.clip(data, -1, 1), rate, subtype=subtype)
                    start = round(float(rng.uniform(0, 60)), 6)
                    rows.append([file_name, fs_id, start, round(start + seconds, 6), salience, fold, class_id, name])
        header = ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"]
        (out / "metadata").mkdir(parents=True, exist_ok=True)
        (out / "metadata" / "UrbanSound8K.csv").write_text(csv_text([header, *rows]), encoding="utf-8")

    return build_miniature(root, "urbansound8k", params, build)


def _speaker_id(speaker: Speaker) -> str:
    return hashlib.sha1(str(speaker).encode()).hexdigest()[:8]


def make_speech_commands(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    words: Sequence[str] = ("yes", "no", "up", "down"),
    speakers: int = 8,
    sample_rate: int = 16000,
) -> Path:
    """Write a miniature Speech Commands V2 (``speech_commands_v0.02`` extracted) and return ``root``.

    Layout written::

        root/
          <word>/<speaker hash>_nohash_<n>.wav     16 kHz, mono, 16-bit, at most 1 s
          validation_list.txt, testing_list.txt     "<word>/<file>.wav" lines; training is every other clip
          _background_noise_/white_noise.wav, pink_noise.wav, README.md
          README.md, LICENSE

    Each speaker (an espeak-ng voice, accent, rate and pitch) says every word once; as in the real set a speaker's
    clips are all in one split (one speaker for validation, one for testing, the rest for training), clips are padded
    with silence to 1 s, and a few are shorter.

    Args:
        root: Output folder (absent, empty, or an earlier miniature).
        seed: Seed of the speakers and of the placement.
        words: The command words (folders).
        speakers: Number of synthetic speakers (at least 3).
        sample_rate: Sampling rate of the files.
    """
    params = generator_settings(locals())
    if speakers < 3 or len(set(words)) != len(words) or not words:
        raise ValueError(f"need at least 3 speakers and distinct words, got {speakers} and {list(words)}")

    def build(out: Path) -> None:
        rng = np.random.default_rng([seed, 35])
        voices = make_speakers(speakers, seed=seed)
        clips, labels, names, rate = keyword_dataset(voices, words=words)
        by_name = {str(v): _speaker_id(v) for v in voices}
        held = {"validation": by_name[str(voices[0])], "testing": by_name[str(voices[1])]}
        lists: dict[str, list[str]] = {"validation": [], "testing": []}
        for clip, label, name in zip(clips, labels, names):
            x = resample_audio(np.asarray(clip, np.float32), rate, sample_rate)[:sample_rate]
            short = rng.random() < 0.1
            canvas = np.zeros(len(x) if short else sample_rate, dtype=np.float32)
            offset = int(rng.integers(len(canvas) - len(x) + 1))
            canvas[offset : offset + len(x)] = x
            rel = f"{words[label]}/{by_name[name]}_nohash_0.wav"
            (out / words[label]).mkdir(parents=True, exist_ok=True)
            sf.write(out / rel, np.clip(canvas, -1, 1), sample_rate, subtype="PCM_16")
            for split, speaker in held.items():
                if by_name[name] == speaker:
                    lists[split].append(rel)
        for split, rels in lists.items():
            (out / f"{split}_list.txt").write_text("".join(f"{r}\n" for r in sorted(rels)), encoding="utf-8")
        noise = out / "_background_noise_"
        noise.mkdir()
        white = rng.normal(scale=0.1, size=3 * sample_rate)
        spectrum = np.fft.rfft(rng.normal(size=3 * sample_rate))
        pink = np.fft.irfft(spectrum / np.sqrt(np.arange(1, len(spectrum) + 1)), n=3 * sample_rate)
        sf.write(noise / "white_noise.wav", white.astype(np.float32), sample_rate, subtype="PCM_16")
        sf.write(noise / "pink_noise.wav", (pink / np.abs(pink).max() * 0.3).astype(np.float32), sample_rate)
        (noise / "README.md").write_text("Long noise recordings to mix into the commands (not a class).\n")
        (out / "README.md").write_text("Miniature Speech Commands V2 written by miil.audio.miniature.\n")
        (out / "LICENSE").write_text("Generated from espeak-ng speech (GPL-3.0-or-later voices).\n")

    return build_miniature(root, "speech_commands", params, build)


def make_audioset(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    train_clips: int = 24,
    eval_clips: int = 12,
    missing_clips: int = 0,
    sample_rate: int = 16000,
    seconds: float = 10.0,
) -> Path:
    """Write a miniature AudioSet (segment CSVs, class index, downloaded clips) and return ``root``.

    Layout written (the released CSVs, and clips as downloaders save them, ``Y<YTID>.flac``)::

        root/
          metadata/class_labels_indices.csv        index,mid,display_name (display names with commas are quoted)
          metadata/balanced_train_segments.csv     three "# ..." header lines, then
          metadata/eval_segments.csv               YTID, start_seconds, end_seconds, "mid1,mid2,..."
          audio/balanced_train_segments/Y<YTID>.flac
          audio/eval_segments/Y<YTID>.flac

    Each 10-s clip mixes one to three sources (:data:`AUDIOSET_CLASSES`) over a low noise floor; its labels are the
    sources present. YouTube ids may start with ``-``; the last ``missing_clips`` segments of each CSV have no clip, as
    videos removed from YouTube.

    Args:
        root: Output folder (absent, empty, or an earlier miniature).
        seed: Seed of everything drawn.
        train_clips: Segments of ``balanced_train_segments.csv``.
        eval_clips: Segments of ``eval_segments.csv``.
        missing_clips: Segments per CSV without a clip.
        sample_rate: Sampling rate of the clips.
        seconds: Clip length.
    """
    params = generator_settings(locals())

    def build(out: Path) -> None:
        rng = np.random.default_rng([seed, 527])
        voices = make_speakers(4, seed=seed + 1)
        spoken, _, _, rate = keyword_dataset(voices, words=("hello", "okay", "listen"))
        words = [resample_audio(np.asarray(w, np.float32), rate, sample_rate) for w in spoken]
        meta = out / "metadata"
        meta.mkdir(parents=True)
        index_rows = [["index", "mid", "display_name"]] + [[i, m, n] for i, (m, n, _) in enumerate(AUDIOSET_CLASSES)]
        (meta / "class_labels_indices.csv").write_text(csv_text(index_rows), encoding="utf-8")
        chars = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
        deck: list[int] = []
        for split, count in (("balanced_train_segments", train_clips), ("eval_segments", eval_clips)):
            lines = []
            positives = 0
            for i in range(count):
                ytid = "".join(rng.choice(chars, size=11).tolist())
                ytid = ("-" + ytid[1:]) if i % 5 == 0 else ytid
                start = float(rng.integers(0, 300))
                k = int(rng.integers(1, 4))
                while len(deck) < k:
                    deck += rng.permutation(len(AUDIOSET_CLASSES)).tolist()
                present, deck = sorted(set(deck[:k])), deck[k:]
                positives += len(present)
                mids = ",".join(AUDIOSET_CLASSES[c][0] for c in present)
                lines.append(f'{ytid}, {start:.3f}, {start + seconds:.3f}, "{mids}"')
                if i >= count - missing_clips:
                    continue
                clip = rng.normal(scale=0.005, size=int(seconds * sample_rate)).astype(np.float32)
                for c in present:
                    source = AUDIOSET_CLASSES[c][2]
                    if source == "speech":
                        word = words[int(rng.integers(len(words)))]
                        event = (word / (np.abs(word).max() or 1.0) * rng.uniform(0.3, 0.9)).astype(np.float32)
                    else:
                        event = _event(source, rng, sample_rate, seconds / 2)
                    _place(clip, event, rng)
                folder = out / "audio" / split
                folder.mkdir(parents=True, exist_ok=True)
                sf.write(folder / f"Y{ytid}.flac", np.clip(clip, -1, 1), sample_rate, subtype="PCM_16")
            header = [
                "# Segments csv created by miil.audio.miniature",
                f"# num_ytids={count}, num_segs={count}, num_unique_labels={len(AUDIOSET_CLASSES)}, "
                f"num_positive_labels={positives}",
                "# YTID, start_seconds, end_seconds, positive_labels",
            ]
            (meta / f"{split}.csv").write_text("\n".join(header + lines) + "\n", encoding="utf-8")

    return build_miniature(root, "audioset", params, build)
