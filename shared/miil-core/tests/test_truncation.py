"""Cut-short containers are recognised from their headers; complete files and unknown sizes are not flagged."""

import struct
import wave

import numpy as np
import pytest

from miil.core.data import TruncatedFileError, container_truncation, describe_read_error


def _wav(path, frames=16000, channels=2):
    samples = (np.sin(np.arange(frames * channels) / 7.0) * 3000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(samples.tobytes())
    return path


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def test_wav_cut_short_names_the_promised_and_present_frames(tmp_path):
    good = _wav(tmp_path / "good.wav")
    assert container_truncation(good) is None
    data = good.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: 44 + 4 * 1000])  # 44-byte header, 4 bytes per stereo 16-bit frame
    assert container_truncation(cut) == "the WAV header promises 16000 frames, the file holds 1000"
    # A streaming writer's placeholder size is "unknown", not a cut.
    streamed = bytearray(data[: 44 + 4 * 1000])
    streamed[40:44] = b"\xff\xff\xff\xff"
    (tmp_path / "streamed.wav").write_bytes(bytes(streamed))
    assert container_truncation(tmp_path / "streamed.wav") is None


def test_iso_media_boxes_and_missing_index(tmp_path):
    ftyp = _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2")
    mdat = _box(b"mdat", bytes(range(256)) * 8)
    moov = _box(b"moov", _box(b"mvhd", bytes(100)))
    whole = ftyp + mdat + moov
    (tmp_path / "ok.mp4").write_bytes(whole)
    assert container_truncation(tmp_path / "ok.mp4") is None
    (tmp_path / "cut.mp4").write_bytes(whole[: len(ftyp) + 500])
    message = container_truncation(tmp_path / "cut.mp4")
    assert message is not None and "'mdat'" in message and f"declares {len(mdat)} bytes" in message
    (tmp_path / "no-index.mp4").write_bytes(ftyp + mdat)  # cut exactly where the index at the end began
    assert "no 'moov' index" in container_truncation(tmp_path / "no-index.mp4")
    (tmp_path / "last-box-open.mp4").write_bytes(ftyp + moov + struct.pack(">I4s", 0, b"mdat") + bytes(50))
    assert container_truncation(tmp_path / "last-box-open.mp4") is None


def test_matroska_segment_size(tmp_path):
    header = b"\x1a\x45\xdf\xa3" + b"\x84" + b"\x42\x86\x81\x01"  # EBML header: 4-byte body (EBMLVersion 1)
    body = bytes(300)
    segment = b"\x18\x53\x80\x67" + b"\x41\x2c" + body  # 2-byte size: 0x012c = 300
    (tmp_path / "ok.mkv").write_bytes(header + segment)
    assert container_truncation(tmp_path / "ok.mkv") is None
    (tmp_path / "cut.mkv").write_bytes((header + segment)[:-120])
    assert container_truncation(tmp_path / "cut.mkv") == "the Matroska segment declares 300 bytes, the file holds 180"
    unknown = header + b"\x18\x53\x80\x67" + b"\x01\xff\xff\xff\xff\xff\xff\xff" + bytes(10)
    (tmp_path / "live.webm").write_bytes(unknown)
    assert container_truncation(tmp_path / "live.webm") is None


@pytest.mark.parametrize("content", [b"", b"plain text, not media\n" * 4, bytes(range(200))])
def test_other_files_are_not_judged(tmp_path, content):
    (tmp_path / "x.bin").write_bytes(content)
    assert container_truncation(tmp_path / "x.bin") is None


def test_the_error_reads_as_truncated(tmp_path):
    path = tmp_path / "cut.wav"
    path.write_bytes(b"RIFF")  # exists and is not empty: the reason comes from the error
    reason = describe_read_error(path, TruncatedFileError("the WAV header promises 10 frames, the file holds 2"))
    assert reason == "truncated (the WAV header promises 10 frames, the file holds 2)"
