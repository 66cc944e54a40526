"""Audio I/O on the real clips shipped in the pygame-ce wheel (WAV 8-bit, FLAC, OGG/Vorbis, MP3 at 11.025 kHz)."""

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from miil.audio import AudioReader, UnreadableAudioError, load_audio, resample_audio
from miil.core.data import UnreadableFileError, UnreadableFileWarning, describe_read_error

from .conftest import sine

PYGAME_DATA = Path(next(iter(importlib.util.find_spec("pygame").submodule_search_locations))) / "examples" / "data"


def test_real_clips_in_every_format_decode_to_the_same_sound():
    wav, sr = load_audio(PYGAME_DATA / "house_lo.wav")
    assert sr == 11025 and wav.dtype == np.float32 and wav.ndim == 1 and len(wav) == 78331
    for name in ("house_lo.flac", "house_lo.ogg"):
        other, other_sr = load_audio(PYGAME_DATA / name)
        assert other_sr == sr and len(other) == len(wav)
        assert np.corrcoef(wav, other)[0, 1] > 0.95, name  # lossless / lossy copies of one recording
    mp3, _ = load_audio(PYGAME_DATA / "house_lo.mp3")
    assert abs(len(mp3) - len(wav)) < 2500  # mp3 adds encoder padding


def test_resampling_to_the_recipe_rates():
    for target in (16000, 22050, 8000):
        x, sr = load_audio(PYGAME_DATA / "boom.wav", sample_rate=target)
        assert sr == target and abs(len(x) - round(12432 * target / 11025)) <= 1
    # soxr keeps a tone's frequency
    tone = sine(440, 1.0, 11025)
    up = resample_audio(tone, 11025, 22050)
    peak_hz = np.argmax(np.abs(np.fft.rfft(up))) * 22050 / len(up)
    assert abs(peak_hz - 440) < 2
    with pytest.raises(ValueError):
        resample_audio(tone, 0, 16000)


def test_reader_resamples_once_and_caches(tmp_path, monkeypatch):
    reader = AudioReader(16000, cache_dir=tmp_path / "cache")
    first = reader.load(PYGAME_DATA / "punch.wav")
    cached = reader.cache_path(PYGAME_DATA / "punch.wav")
    assert cached.is_file() and cached.name.endswith(".16000.wav")
    import miil.audio.io as io_mod

    def no_resampling(*args, **kwargs):
        raise AssertionError("resampled twice")

    monkeypatch.setattr(io_mod, "resample_audio", no_resampling)
    second = AudioReader(16000, cache_dir=tmp_path / "cache").load(PYGAME_DATA / "punch.wav")
    assert np.allclose(first, second, atol=1 / 16384)  # 16-bit cache
    # A file already at the target rate is read directly, without a cache entry.
    direct = AudioReader(11025, cache_dir=tmp_path / "cache2")
    assert direct.load(PYGAME_DATA / "punch.wav") is not None and not (tmp_path / "cache2").exists()


def test_stereo_is_mixed_down(tmp_path):
    left, right = sine(300, 0.5, 16000), sine(500, 0.5, 16000)
    sf.write(tmp_path / "st.wav", np.stack([left, right], 1), 16000)
    x, _ = load_audio(tmp_path / "st.wav")
    assert np.allclose(x, (left + right) / 2, atol=1e-4)


def test_unreadable_files_are_skipped_or_rejected(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    missing = tmp_path / "missing.flac"
    reader = AudioReader(16000)
    for path in (bad, empty, missing):
        with pytest.warns(UnreadableFileWarning, match=path.name):
            assert reader.load(path) is None
    assert reader.count == 3 and reader.skipped == [str(bad), str(empty), str(missing)]
    strict = AudioReader(16000, strict=True)
    with pytest.raises(UnreadableAudioError, match="broken.wav") as info:
        strict.load(bad)
    assert isinstance(info.value, UnreadableFileError) and "strict=False" in str(info.value)
    with pytest.raises(UnreadableAudioError, match="missing.flac"):
        load_audio(missing)


@pytest.mark.slow
def test_librosa_backend_decodes_too():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, sr_a = load_audio(PYGAME_DATA / "whiff.wav", backend="librosa")
    b, sr_b = load_audio(PYGAME_DATA / "whiff.wav", backend="soundfile")
    assert sr_a == sr_b == 11025 and np.allclose(a, b, atol=1e-4)
    with pytest.raises(ValueError, match="backend"):
        load_audio(PYGAME_DATA / "whiff.wav", backend="ffmpeg")


def test_cut_files_are_reported_truncated_not_read_short(tmp_path):
    """A WAV cut short is read by libsndfile as a shorter clip without an error: the header's data size says it is
    truncated. A cut FLAC stops decoding before the frame count its STREAMINFO states."""
    data = (PYGAME_DATA / "house_lo.wav").read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) * 2 // 5])
    assert 0 < sf.info(cut).frames < 78331  # what a plain read would have returned
    with pytest.raises(UnreadableAudioError) as info:
        load_audio(cut)
    reason = describe_read_error(cut, info.value.error, "audio")
    assert reason.startswith("truncated (the WAV header promises 78331 frames, the file holds "), reason
    flac = (PYGAME_DATA / "house_lo.flac").read_bytes()
    cut_flac = tmp_path / "cut.flac"
    cut_flac.write_bytes(flac[: len(flac) * 2 // 5])
    with pytest.raises(UnreadableAudioError) as info:
        load_audio(cut_flac)
    assert describe_read_error(cut_flac, info.value.error, "audio").startswith("truncated (decoding stopped after ")
    reader = AudioReader(16000)
    with pytest.warns(UnreadableFileWarning, match=r"cut\.wav: truncated"):
        assert reader.load(cut) is None
    assert reader.skipped_sample(cut).reason == reason
    whole, _ = load_audio(PYGAME_DATA / "house_lo.flac")  # complete files are untouched by the checks
    assert len(whole) == 78331
