"""Reading audio files: decode with soundfile (librosa as fallback), resample once, cache, skip unreadable files.

Paper: Gazneli et al., 2022 (arXiv 2204.11479), Sec. 4: every dataset is used at one fixed rate (22.05 kHz for
ESC-50, UrbanSound8K and AudioSet, 16 kHz for SpeechCommands); the original resampled each corpus offline with
scripts. Here any file at any rate is decoded, mixed down to mono and resampled to the recipe's rate once; with a
cache folder the resampled clip is written once (``<cache>/<name>-<key>.<rate>.wav``, keyed by the source's path,
size and modification time; the source is never touched) and read from there afterwards.

Decoding uses soundfile (libsndfile: WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF, ...); other containers (m4a, aac,
wma, ...) go through ``librosa.load`` (audioread with ffmpeg or GStreamer, when installed). A file in a libsndfile
format that libsndfile cannot decode is broken, so it is not handed to the slow fallback. Resampling uses soxr's
high-quality mode, librosa's default resampler. Missing, empty, truncated or undecodable files follow the
unreadable-file policy of ``miil.core``: skipped with a warning naming the file and the reason and counted, or, in
strict mode, an :class:`UnreadableAudioError` naming the file.

A cut file is not read as a shorter clip: libsndfile returns a truncated WAV without an error, so the WAV header's
``data`` chunk size is compared with the bytes present (:func:`miil.core.data.container_truncation`, which also
covers MP4/M4A containers), and for other codecs the frames the decoder delivers are compared with the count the
container states (FLAC's STREAMINFO); a shortfall raises "truncated".
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import numpy as np

from miil.core.data import (
    Skipped,
    TruncatedFileError,
    UnreadableFileError,
    UnreadablePolicy,
    container_truncation,
    describe_read_error,
)

__all__ = ["AudioReader", "UnreadableAudioError", "load_audio", "resample_audio"]

BACKENDS = ("auto", "soundfile", "librosa")
# Extensions libsndfile decodes itself: a failure there means a broken file, not a missing codec.
SOUNDFILE_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".snd", ".caf"}
    | {".w64", ".rf64", ".voc", ".wv", ".mat"}
)


class UnreadableAudioError(UnreadableFileError):
    """An audio file is missing, empty or cannot be decoded.

    Args:
        path: The file.
        error: The underlying exception.
    """

    kind = "audio"


def _decode_soundfile(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    with sf.SoundFile(str(path)) as fh:
        promised, sr = int(fh.frames), int(fh.samplerate)
        blocks, decoded = [], 0
        try:  # small blocks: a stream cut early still shows how far it decoded (one large read just fails)
            for block in fh.blocks(blocksize=4096, dtype="float32", always_2d=True):
                blocks.append(block)
                decoded += len(block)
        except sf.LibsndfileError as err:
            if not decoded:
                raise
            # A FLAC / OGG stream that loses sync part-way: the data ends before the stream says it does.
            raise TruncatedFileError(f"decoding stopped after {decoded} of the {promised} frames ({err})") from err
    if 0 < decoded < promised:
        raise TruncatedFileError(f"the header promises {promised} frames, {decoded} decode")
    data = np.concatenate(blocks) if blocks else np.zeros((0, 1), dtype=np.float32)
    return data.mean(axis=1) if data.shape[1] > 1 else data[:, 0], sr


def _decode_librosa(path: Path) -> tuple[np.ndarray, int]:
    import librosa

    data, sr = librosa.load(str(path), sr=None, mono=True)
    return np.asarray(data, dtype=np.float32), int(sr)


def resample_audio(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a mono float signal with soxr's high-quality filter (librosa's default ``soxr_hq``).

    Args:
        x: ``[L]`` samples.
        orig_sr: Rate of ``x``.
        target_sr: Wanted rate.
    """
    if orig_sr == target_sr:
        return x
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    import soxr

    return np.ascontiguousarray(soxr.resample(x, orig_sr, target_sr, quality="HQ"), dtype=np.float32)


def load_audio(
    path: str | os.PathLike, *, sample_rate: int | None = None, backend: str = "auto"
) -> tuple[np.ndarray, int]:
    """Decode one file to mono float32, optionally resampled.

    Args:
        path: Audio file.
        sample_rate: Target rate; ``None`` keeps the file's.
        backend: "auto" (soundfile for its formats, librosa for other containers), "soundfile" or "librosa".

    Returns:
        ``(samples [L], rate)``.

    Raises:
        UnreadableAudioError: The file is missing, empty, not decodable or holds non-finite samples.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    path = Path(path)
    try:
        if not path.is_file():
            raise FileNotFoundError("no such file")
        cut = container_truncation(path)
        if cut is not None:
            raise TruncatedFileError(cut)
        use_librosa = backend == "librosa" or (backend == "auto" and path.suffix.lower() not in SOUNDFILE_EXTENSIONS)
        x, sr = _decode_librosa(path) if use_librosa else _decode_soundfile(path)
        if x.size == 0:
            raise ValueError("the file holds no samples")
        if not np.isfinite(x).all():
            raise ValueError("the file holds NaN or infinite samples")
    except UnreadableAudioError:
        raise
    except Exception as err:  # libsndfile, audioread and ffmpeg raise many unrelated types
        raise UnreadableAudioError(path, err) from err
    if sample_rate is not None and sample_rate != sr:
        x, sr = resample_audio(x, sr, sample_rate), sample_rate
    return x, sr


class AudioReader:
    """Loads clips at one sample rate, resampling each file once (cached) and applying the unreadable-file policy.

    An unreadable file is recorded by :attr:`policy` (miil-core's :class:`~miil.core.data.UnreadablePolicy`: one
    warning naming the file and the reason); datasets return :meth:`skipped_sample` in its place. The counters
    (``count``, ``skipped``) live in the loading process; with DataLoader workers read the totals the evaluation loop
    or the training engine reports instead.

    Args:
        sample_rate: Rate every clip is returned at.
        cache_dir: Folder for resampled copies; ``None`` resamples on every read.
        strict: Raise :class:`UnreadableAudioError` instead of warning and returning ``None``.
        backend: Decoder, see :func:`load_audio`.
        cache_format: "wav" (16-bit PCM, float when louder than full scale) or "flac" (smaller, peak-limited).
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        cache_dir: str | os.PathLike | None = None,
        strict: bool = False,
        backend: str = "auto",
        cache_format: str = "wav",
    ):
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if cache_format not in ("wav", "flac"):
            raise ValueError(f"cache_format must be 'wav' or 'flac', got {cache_format!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.sample_rate = int(sample_rate)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.strict = bool(strict)
        self.backend = backend
        self.cache_format = cache_format
        self.policy = UnreadablePolicy(strict=strict)

    @property
    def count(self) -> int:
        """Files skipped so far (in this process)."""
        return self.policy.count

    @property
    def skipped(self) -> list[str]:
        """The files skipped so far (in this process)."""
        return self.policy.skipped

    def cache_path(self, path: str | os.PathLike) -> Path | None:
        """Where the resampled copy of ``path`` lives (``None`` without a cache or for a missing file)."""
        if self.cache_dir is None:
            return None
        src = Path(path).resolve()
        try:
            st = src.stat()
        except OSError:
            return None
        key = hashlib.sha1(f"{src}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
        return self.cache_dir / f"{src.stem}-{key}.{self.sample_rate}.{self.cache_format}"

    def _write_cache(self, target: Path, x: np.ndarray) -> None:
        import soundfile as sf

        target.parent.mkdir(parents=True, exist_ok=True)
        peak = float(np.abs(x).max()) if x.size else 0.0
        if self.cache_format == "wav":
            subtype, fmt = ("PCM_16" if peak <= 1.0 else "FLOAT"), "WAV"
        else:
            subtype, fmt = "PCM_16", "FLAC"
            if peak > 1.0:
                x = x / peak
        # Unique temporary name + os.replace: DataLoader workers and DDP ranks may cache the same file at once.
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            sf.write(str(tmp), x, self.sample_rate, subtype=subtype, format=fmt)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def _read(self, path: Path) -> np.ndarray:
        cached = self.cache_path(path)
        if cached is not None and cached.is_file():
            try:
                x, _ = load_audio(cached, backend="soundfile")
                return x
            except UnreadableAudioError:
                cached.unlink(missing_ok=True)  # a damaged cache entry is rebuilt from the source
        x, sr = load_audio(path, backend=self.backend)
        if sr != self.sample_rate:
            x = resample_audio(x, sr, self.sample_rate)
            if cached is not None:
                self._write_cache(cached, x)
        return x

    def load(self, path: str | os.PathLike) -> np.ndarray | None:
        """The mono float32 clip at :attr:`sample_rate`, or ``None`` for an unreadable file (non-strict).

        Args:
            path: Audio file.
        """
        try:
            return self._read(Path(path))
        except UnreadableAudioError as err:
            if self.strict:
                raise
            self.policy.record(path, describe_read_error(path, err.error, "audio"))
            return None

    def skipped_sample(self, path: str | os.PathLike) -> Skipped:
        """The record a dataset returns in place of the sample of ``path`` after :meth:`load` returned ``None``."""
        return self.policy.skipped_sample(path)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(sample_rate={self.sample_rate}, cache_dir={self.cache_dir}, strict={self.strict}, "
            f"count={self.count})"
        )
