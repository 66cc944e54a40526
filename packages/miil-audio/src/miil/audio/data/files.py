"""Audio files named on the command line, as a dataset for ``miil audio infer``.

Paper: Gazneli et al., 2022 (arXiv 2204.11479). Inference takes any files at any rate and length: each is decoded,
resampled to the model's rate, peak-normalised like the training clips and cut into windows of the model's length
(:func:`~miil.audio.data.clip.windows`), whose class probabilities are averaged. A folder is searched for audio
files. An input that cannot be read (missing, empty, cut short, not audio, a folder where a file belongs) becomes a
:class:`~miil.core.data.Skipped` record with the reason, reported by the evaluation loop, not a crash that loses the
predictions of the good files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from miil.core.data import Skipped

from ..io import AudioReader
from .clip import peak_normalize, windows
from .datasets import AUDIO_EXTENSIONS

__all__ = ["AudioFileDataset", "list_audio_inputs"]


def _is_audio_name(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS


def list_audio_inputs(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """The files to classify: each input as given, folders searched (recursively, sorted) for audio files.

    Inputs that do not exist, and entries with an audio name that are not files (a folder called ``x.wav``), are
    kept, so that reading them reports why they were skipped.

    Args:
        inputs: Files and folders from the command line.
    """
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir() and not _is_audio_name(path):
            found += sorted(p for p in path.rglob("*") if _is_audio_name(p))
        else:
            found.append(path)
    return list(dict.fromkeys(found))


class AudioFileDataset(Dataset):
    """``(windows [W, 1, seq_len], index, samples)`` per file (``samples``: the clip's length at the reader's rate),
    or a ``Skipped`` record for a file that cannot be read.

    Args:
        files: Audio files.
        reader: Decodes and resamples them (its policy decides between skipping and raising).
        seq_len: The model's input length.
        peak: Peak the clips are normalised to (0.95, as in training).
    """

    def __init__(self, files: Sequence[str | os.PathLike], reader: AudioReader, seq_len: int, peak: float = 0.95):
        self.files = [Path(f) for f in files]
        self.reader = reader
        self.seq_len = int(seq_len)
        self.peak = peak

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int] | Skipped:
        x = self.reader.load(self.files[index])
        if x is None:
            return self.reader.skipped_sample(self.files[index])
        x = torch.from_numpy(np.ascontiguousarray(peak_normalize(np.asarray(x, dtype=np.float32), self.peak)))
        return windows(x, self.seq_len).unsqueeze(1), index, len(x)
