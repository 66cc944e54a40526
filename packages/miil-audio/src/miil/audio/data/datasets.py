"""Datasets in the formats of the corpora EAT was trained on, plus class folders and in-memory clips.

Paper: Gazneli et al., 2022 (arXiv 2204.11479), Sec. 4. Every dataset returns ``(waveform [1, seq_len], target)``:
a class index for single-label sets, a multi-hot float vector for AudioSet; an unreadable file (missing, empty, cut
short, not audio) gives a :class:`~miil.core.data.Skipped` record naming the file and the reason, which the training
engine and the evaluation loop count and report (strict mode raises instead). Clips are decoded and resampled by
:class:`~miil.audio.io.AudioReader`, peak-normalised to 0.95 and cropped / zero-padded (:mod:`.clip`). Paths read
from a label file stay inside the dataset root (:func:`miil.core.data.resolve_under_root`): a row such as
``../../../usr/share/sounds/x.wav`` is refused, not read.

Formats (as published by the datasets' authors):

- ESC-50: ``meta/esc50.csv`` (``filename,fold,target,category,...``) and ``audio/<filename>``, folds 1-5. Without
  the CSV, ``**/*.wav`` files in class folders named ``<fold>-...`` (the original repository's layout).
- UrbanSound8K: ``metadata/UrbanSound8K.csv`` (``slice_file_name,fsID,start,end,salience,fold,classID,class``) and
  ``audio/fold<k>/<slice_file_name>``, folds 1-10.
- In both, labels are the positions of the published class ids in sorted order, so a subset of the classes (ESC-10,
  a miniature copy) gets labels 0..C-1; ``target_ids`` keeps the published ids.
- SpeechCommands V2: ``<word>/<file>.wav`` with ``validation_list.txt`` and ``testing_list.txt``; the training set
  is every other clip; ``_background_noise_`` is not a class (35 words).
- AudioSet: a segments CSV (``# YTID, start_seconds, end_seconds, positive_labels``), ``class_labels_indices.csv``
  (``index,mid,display_name``) and a folder of clips named ``Y<YTID>.<ext>`` or ``<YTID>_<start>.<ext>``; segments
  whose clip was never downloaded stay in the set and count as missing inputs.
- Class folders: ``<root>/<class>/**/<clip>.<ext>``.
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from miil.core.data import Skipped, resolve_under_root

from ..io import AudioReader
from .clip import fit_length, peak_normalize

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioClipDataset",
    "AudioFolderDataset",
    "AudioSetDataset",
    "ESC50Dataset",
    "InMemoryAudioDataset",
    "SpeechCommandsDataset",
    "UrbanSound8KDataset",
]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au", ".opus", ".m4a", ".wv")


class _ClipDataset(Dataset):
    """Peak normalisation, crop / pad and target encoding around a ``_samples(i)`` source."""

    def __init__(
        self,
        targets: Sequence,
        *,
        classes: Sequence[str],
        seq_len: int,
        train: bool,
        multilabel: bool,
        peak: float = 0.95,
    ):
        self.targets = list(targets)
        self.classes = list(classes)
        self.seq_len = int(seq_len)
        self.train = bool(train)
        self.multilabel = bool(multilabel)
        self.peak = peak

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.targets)

    def _samples(self, index: int) -> np.ndarray | None:
        raise NotImplementedError

    def _skipped(self, index: int) -> Skipped:
        return Skipped(f"sample {index}", "unreadable")

    def encode_target(self, target) -> torch.Tensor | int:
        if not self.multilabel:
            return int(target)
        hot = torch.zeros(self.num_classes)
        hot[list(target)] = 1.0
        return hot

    def __getitem__(self, index: int):
        x = self._samples(index)
        if x is None:
            return self._skipped(index)
        x = torch.from_numpy(np.ascontiguousarray(peak_normalize(np.asarray(x, dtype=np.float32), self.peak)))
        x = fit_length(x, self.seq_len, random_crop=self.train)
        return x.unsqueeze(0), self.encode_target(self.targets[index])


class AudioClipDataset(_ClipDataset):
    """Clips read from files.

    Args:
        files: Audio files.
        targets: A class index per file, or a list of class indices per file when ``multilabel``.
        classes: Class names.
        sample_rate: Rate every clip is resampled to.
        seq_len: Clip length in samples.
        train: Random crops (training) instead of centre crops.
        multilabel: Targets are sets of classes, returned multi-hot.
        cache_dir: Folder for resampled copies (resample once).
        strict: Raise on unreadable files instead of skipping them.
        reader: A ready :class:`~miil.audio.io.AudioReader` (overrides ``sample_rate``, ``cache_dir``, ``strict``).
    """

    def __init__(
        self,
        files: Sequence[str | os.PathLike],
        targets: Sequence,
        *,
        classes: Sequence[str],
        sample_rate: int,
        seq_len: int,
        train: bool = False,
        multilabel: bool = False,
        cache_dir: str | os.PathLike | None = None,
        strict: bool = False,
        reader: AudioReader | None = None,
    ):
        if len(files) != len(targets):
            raise ValueError(f"{len(files)} files but {len(targets)} targets")
        super().__init__(targets, classes=classes, seq_len=seq_len, train=train, multilabel=multilabel)
        self.files = [Path(f) for f in files]
        self.reader = reader or AudioReader(sample_rate, cache_dir=cache_dir, strict=strict)
        self.sample_rate = self.reader.sample_rate

    def _samples(self, index: int) -> np.ndarray | None:
        return self.reader.load(self.files[index])

    def _skipped(self, index: int) -> Skipped:
        return self.reader.skipped_sample(self.files[index])

    def class_counts(self) -> np.ndarray:
        """Clips per class."""
        counts = np.zeros(self.num_classes, dtype=np.int64)
        for t in self.targets:
            counts[list(t) if self.multilabel else int(t)] += 1
        return counts

    def sample_weights(self) -> torch.Tensor:
        """Per clip, the sum of the inverse frequencies of its classes (the AudioSet balanced sampler's weights)."""
        inv = 1.0 / np.maximum(self.class_counts(), 1)
        w = [inv[list(t)].sum() if self.multilabel else inv[int(t)] for t in self.targets]
        return torch.tensor(w, dtype=torch.float64)


class InMemoryAudioDataset(_ClipDataset):
    """Clips already in memory (synthesised speech, tests).

    Args:
        clips: Mono float arrays at one rate.
        targets: Class index per clip (or class-index lists with ``multilabel``).
        classes: Class names.
        seq_len: Clip length in samples.
        train: Random crops instead of centre crops.
        multilabel: Multi-hot targets.
    """

    def __init__(
        self,
        clips: Sequence[np.ndarray],
        targets: Sequence,
        *,
        classes: Sequence[str],
        seq_len: int,
        train: bool = False,
        multilabel: bool = False,
    ):
        if len(clips) != len(targets):
            raise ValueError(f"{len(clips)} clips but {len(targets)} targets")
        super().__init__(targets, classes=classes, seq_len=seq_len, train=train, multilabel=multilabel)
        self.clips = [np.asarray(c, dtype=np.float32) for c in clips]

    def _samples(self, index: int) -> np.ndarray:
        return self.clips[index]


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"metadata file {path} not found")
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _require(rows: list[dict[str, str]], columns: Sequence[str], path: Path) -> None:
    have = set(rows[0]) if rows else set()
    missing = [c for c in columns if c not in have]
    if missing:
        raise ValueError(f"{path} lacks the columns {missing} (has {sorted(have)})")


class _FoldedClipDataset(AudioClipDataset):
    """A clip dataset with official cross-validation folds: one fold held out for testing."""

    def _init_folds(
        self,
        items: list[tuple[Path, int, int]],
        classes: list[str],
        *,
        fold: int | None,
        train: bool,
        name: str,
        folds: Collection[int] | None = None,
        **kwargs,
    ) -> None:
        """Keep the held-out fold (``train=False``) or the others, then load as :class:`AudioClipDataset`.

        Args:
            items: ``(path, fold, label)`` of every clip.
            classes: Class names by label.
            fold: The held-out fold; ``None`` keeps every clip.
            train: The other folds instead of the held-out one.
            name: The dataset and its root, for the error on an unknown fold.
            folds: Take exactly these folds instead (``fold`` and ``train`` are then only recorded).
            **kwargs: :class:`AudioClipDataset` options.
        """
        present = sorted({it[1] for it in items})
        wanted = sorted(set(folds)) if folds is not None else ([fold] if fold is not None else [])
        unknown = [f for f in wanted if f not in present]
        if unknown:
            raise ValueError(f"{name} has folds {present}; got fold {', '.join(map(str, unknown))}")
        if folds is not None:
            items = [it for it in items if it[1] in wanted]
        elif fold is not None:
            items = [it for it in items if (it[1] != fold) == train]
        self.fold = fold
        super().__init__([it[0] for it in items], [it[2] for it in items], classes=classes, train=train, **kwargs)


class ESC50Dataset(_FoldedClipDataset):
    """ESC-50 (2,000 five-second clips, 50 classes, 5 folds): fold ``fold`` is the test set.

    Args:
        root: The ESC-50 folder (with ``meta/esc50.csv`` and ``audio/``).
        fold: Held-out fold (1-5); ``None`` takes every clip.
        train: The four other folds (with random crops) instead of the held-out fold.
        sample_rate: Target rate (22.05 kHz in the paper).
        seq_len: Clip length (114688 samples in the paper, about 5.2 s, so clips are zero-padded).
        meta_file: The metadata CSV, when it is not ``root/meta/esc50.csv`` (its file names are under
            ``root/audio``).
        folds: Take exactly these folds instead of "all but ``fold``" / "``fold``".
        **kwargs: :class:`AudioClipDataset` options (``cache_dir``, ``strict``, ``reader``).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        fold: int | None,
        train: bool,
        sample_rate: int = 22050,
        seq_len: int = 114688,
        meta_file: str | os.PathLike | None = None,
        folds: Collection[int] | None = None,
        **kwargs,
    ):
        root = Path(root)
        meta = Path(meta_file) if meta_file is not None else root / "meta" / "esc50.csv"
        if meta_file is not None or meta.is_file():
            rows = _read_csv(meta)
            _require(rows, ("filename", "fold", "target", "category"), meta)
            names = {int(r["target"]): r["category"] for r in rows}
            self.target_ids = sorted(names)
            classes = [names[i] for i in self.target_ids]
            label = {t: i for i, t in enumerate(self.target_ids)}
            items = [
                (resolve_under_root(root, f"audio/{r['filename']}"), int(r["fold"]), label[int(r["target"])])
                for r in rows
            ]
        else:
            files = sorted(p for p in root.rglob("*.wav") if p.parent != root)
            if not files:
                raise FileNotFoundError(f"{root} has neither meta/esc50.csv nor class folders of .wav files")
            classes = sorted({p.parent.name for p in files})
            index = {c: i for i, c in enumerate(classes)}
            self.target_ids = list(range(len(classes)))
            try:
                items = [(p, int(p.name.split("-")[0]), index[p.parent.name]) for p in files]
            except ValueError as err:
                raise ValueError(f"ESC-50 file names under {root} must start with '<fold>-': {err}") from err
        self._init_folds(
            items,
            classes,
            fold=fold,
            train=train,
            folds=folds,
            name=f"ESC-50 at {root}",
            sample_rate=sample_rate,
            seq_len=seq_len,
            **kwargs,
        )


class UrbanSound8KDataset(_FoldedClipDataset):
    """UrbanSound8K (8,732 clips up to 4 s, 10 classes, 10 folds): fold ``fold`` is the test set.

    Args:
        root: The UrbanSound8K folder (``metadata/UrbanSound8K.csv``, ``audio/fold<k>/``).
        fold: Held-out fold (1-10); ``None`` takes every clip.
        train: The nine other folds instead of the held-out fold.
        sample_rate: Target rate (22.05 kHz in the paper).
        seq_len: Clip length (90112 samples, about 4.1 s).
        meta_file: The metadata CSV, when it is not ``root/metadata/UrbanSound8K.csv``.
        folds: Take exactly these folds instead of "all but ``fold``" / "``fold``".
        **kwargs: :class:`AudioClipDataset` options.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        fold: int | None,
        train: bool,
        sample_rate: int = 22050,
        seq_len: int = 90112,
        meta_file: str | os.PathLike | None = None,
        folds: Collection[int] | None = None,
        **kwargs,
    ):
        root = Path(root)
        meta = Path(meta_file) if meta_file is not None else root / "metadata" / "UrbanSound8K.csv"
        rows = _read_csv(meta)
        _require(rows, ("slice_file_name", "fold", "classID", "class"), meta)
        names = {int(r["classID"]): r["class"] for r in rows}
        self.target_ids = sorted(names)
        classes = [names[i] for i in self.target_ids]
        label = {t: i for i, t in enumerate(self.target_ids)}
        items = [
            (
                resolve_under_root(root, f"audio/fold{int(r['fold'])}/{r['slice_file_name']}"),
                int(r["fold"]),
                label[int(r["classID"])],
            )
            for r in rows
        ]
        self._init_folds(
            items,
            classes,
            fold=fold,
            train=train,
            folds=folds,
            name=f"UrbanSound8K at {root}",
            sample_rate=sample_rate,
            seq_len=seq_len,
            **kwargs,
        )


class SpeechCommandsDataset(AudioClipDataset):
    """Google Speech Commands V2 (35 words): the official train / validation / testing split.

    Args:
        root: The extracted ``speech_commands_v0.02`` folder.
        split: "train", "validation" or "testing".
        sample_rate: Target rate (16 kHz).
        seq_len: Clip length (16384 samples).
        list_file: For "validation" / "testing": the list of ``<word>/<file>.wav`` lines, when it is not
            ``root/<split>_list.txt``.
        **kwargs: :class:`AudioClipDataset` options.
    """

    SPLITS = ("train", "validation", "testing")

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        split: str,
        sample_rate: int = 16000,
        seq_len: int = 16384,
        list_file: str | os.PathLike | None = None,
        **kwargs,
    ):
        if split not in self.SPLITS:
            raise ValueError(f"split must be one of {self.SPLITS}, got {split!r}")
        root = Path(root)
        classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
        if not classes:
            raise FileNotFoundError(f"{root} has no word folders")
        listed = {}
        for name in ("validation", "testing"):
            path = Path(list_file) if list_file is not None and name == split else root / f"{name}_list.txt"
            if not path.is_file():
                raise FileNotFoundError(f"SpeechCommands list {path} not found")
            listed[name] = [ln.strip() for ln in path.read_text().splitlines() if ln.strip().endswith(".wav")]
        if split == "train":
            held = set(listed["validation"]) | set(listed["testing"])
            rel = sorted(
                f"{c}/{p.name}" for c in classes for p in (root / c).glob("*.wav") if f"{c}/{p.name}" not in held
            )
        else:
            rel = sorted(listed[split])
        paths = [resolve_under_root(root, r) for r in rel]  # list lines come from a file: refuse escapes first
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted({r.split("/")[0] for r in rel} - set(index))
        if unknown:
            raise ValueError(f"{split}_list.txt of {root} names words without a folder: {unknown[:5]}")
        self.split = split
        super().__init__(
            paths,
            [index[r.split("/")[0]] for r in rel],
            classes=classes,
            sample_rate=sample_rate,
            seq_len=seq_len,
            train=split == "train",
            **kwargs,
        )


def _segment_rows(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise FileNotFoundError(f"AudioSet segments file {path} not found")
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh, skipinitialspace=True):
            if not row or row[0].lstrip().startswith("#"):
                continue
            if len(row) < 4:
                raise ValueError(f"{path}: expected 'YTID, start_seconds, end_seconds, positive_labels', got {row}")
            rows.append(row)
    return rows


class AudioSetDataset(AudioClipDataset):
    """AudioSet (527 classes, multi-label) from a segments CSV and a folder of downloaded clips.

    Segments whose clip is not in ``audio_dir`` (videos removed from YouTube before the download) stay in the set
    as missing inputs, announced by one warning and reported as skipped when read (``strict`` raises instead,
    naming the first one); segments with no known label are left out.

    Args:
        segments_csv: ``balanced_train_segments.csv``, ``unbalanced_train_segments.csv`` or ``eval_segments.csv``.
        audio_dir: Folder (searched recursively) with the clips, named ``Y<YTID>.<ext>`` or ``<YTID>_<start>.<ext>``.
        labels_csv: ``class_labels_indices.csv``.
        train: Random crops instead of centre crops.
        sample_rate: Target rate (22.05 kHz in the paper).
        seq_len: Clip length (221184 samples, about 10 s).
        strict: Raise on missing or unreadable clips.
        **kwargs: :class:`AudioClipDataset` options.
    """

    def __init__(
        self,
        segments_csv: str | os.PathLike,
        audio_dir: str | os.PathLike,
        labels_csv: str | os.PathLike,
        *,
        train: bool,
        sample_rate: int = 22050,
        seq_len: int = 221184,
        strict: bool = False,
        **kwargs,
    ):
        labels_csv, audio_dir, segments_csv = Path(labels_csv), Path(audio_dir), Path(segments_csv)
        label_rows = _read_csv(labels_csv)
        _require(label_rows, ("index", "mid", "display_name"), labels_csv)
        label_rows.sort(key=lambda r: int(r["index"]))
        classes = [r["display_name"] for r in label_rows]
        # by position: a class list that is a subset of the 527 classes keeps targets inside 0..C-1
        mid_index = {r["mid"]: i for i, r in enumerate(label_rows)}
        if not audio_dir.is_dir():
            raise FileNotFoundError(f"AudioSet audio folder {audio_dir} not found")
        found = {p.stem: p for p in audio_dir.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS}
        files, targets, missing, unlabelled = [], [], [], 0
        for ytid, start, end, labels, *_ in _segment_rows(segments_csv):
            ytid, start, end = ytid.strip(), start.strip(), end.strip()
            target = sorted({mid_index[m.strip()] for m in labels.split(",") if m.strip() in mid_index})
            if not target:
                unlabelled += 1
                continue
            s = int(float(start))
            keys = (f"Y{ytid}", ytid, f"{ytid}_{s}", f"Y{ytid}_{s}", f"{ytid}_{start}", f"{ytid}_{s}_{int(float(end))}")
            path = next((found[k] for k in keys if k in found), None)
            if path is None:
                missing.append(ytid)
                # where a download would have put it, read as "missing"; the id comes from the CSV: keep it inside
                path = resolve_under_root(audio_dir, f"Y{ytid}.wav")
            files.append(path)
            targets.append(target)
        if missing:
            msg = f"{len(missing)} of the segments in {segments_csv} have no clip in {audio_dir} (first: {missing[0]})"
            if strict:
                hint = "; download them, or run with --strict false (strict=False in Python) to skip and report them"
                raise FileNotFoundError(msg + hint)
            warnings.warn(msg + "; they are reported as missing inputs", stacklevel=2)
        self.missing = missing
        self.unlabelled = unlabelled
        super().__init__(
            files,
            targets,
            classes=classes,
            sample_rate=sample_rate,
            seq_len=seq_len,
            train=train,
            multilabel=True,
            strict=strict,
            **kwargs,
        )


class AudioFolderDataset(AudioClipDataset):
    """Clips in class folders: ``<root>/<class>/**/<clip>.<ext>`` (for your own data).

    Args:
        root: Folder of class folders.
        sample_rate: Target rate.
        seq_len: Clip length in samples.
        train: Random crops instead of centre crops.
        classes: Class names (folder names) in label order; default: the sorted folder names.
        **kwargs: :class:`AudioClipDataset` options.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        sample_rate: int,
        seq_len: int,
        train: bool = False,
        classes: Sequence[str] | None = None,
        **kwargs,
    ):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"audio folder {root} not found")
        folders = sorted(p.name for p in root.iterdir() if p.is_dir())
        classes = list(classes) if classes is not None else folders
        unknown = sorted(set(folders) - set(classes))
        if unknown:
            raise ValueError(f"{root} has class folders {unknown} that are not among the classes {classes}")
        files, targets = [], []
        for i, c in enumerate(classes):
            for p in sorted((root / c).rglob("*")) if (root / c).is_dir() else []:
                if p.suffix.lower() in AUDIO_EXTENSIONS:
                    files.append(p)
                    targets.append(i)
        if not files:
            raise FileNotFoundError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) in class folders of {root}")
        super().__init__(
            files, targets, classes=classes, sample_rate=sample_rate, seq_len=seq_len, train=train, **kwargs
        )
