"""Video I/O: decord and PyAV read encoded clips, the sampling indices, transforms, unreadable files."""

from __future__ import annotations

import platform
import warnings

import numpy as np
import pytest
import torch

from miil.core.data import Skipped, TruncatedFileError, UnreadableFileWarning, describe_read_error
from miil.stam import (
    ClipSampling,
    UnreadableVideoError,
    VideoDataset,
    VideoTransform,
    available_backends,
    load_clip,
    open_video,
    read_frames,
    sample_frame_indices,
    sample_video_paths,
    write_video,
)


def _ramp_video(n: int = 30, height: int = 32, width: int = 64) -> np.ndarray:
    """Frames whose brightness encodes the frame index (0, 8, 16, ...), in flat 8x8 blocks that survive H.264."""
    frames = np.zeros((n, height, width, 3), np.uint8)
    for i in range(n):
        frames[i] = (i * 8) % 256
        frames[i, :8, :8] = [255, 0, 0]
    return frames


@pytest.fixture(scope="module")
def ramp_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("ramp") / "ramp.mp4"
    return write_video(path, _ramp_video(), fps=10.0)


def _frame_ids(frames: np.ndarray) -> list[int]:
    return [int(round(float(f[16:, 16:].mean()) / 8)) for f in frames]


def test_backends_installed():
    expected = ["decord", "pyav"] if platform.machine().lower() in ("x86_64", "amd64") else ["pyav"]
    assert available_backends() == expected


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_backends_read_encoded_clip(ramp_clip, backend):
    video = open_video(ramp_clip, backend=backend)
    assert video.num_frames == 30 and video.fps == pytest.approx(10.0)
    assert video.duration == pytest.approx(3.0)
    frames = video.get_batch([0, 7, 29, 7])
    assert frames.shape == (4, 32, 64, 3) and frames.dtype == np.uint8
    assert _frame_ids(frames) == [0, 7, 29, 7]
    assert frames[0, 2, 2, 0] > 200 and frames[0, 2, 2, 1] < 60  # RGB order: the red corner is red
    with pytest.raises(IndexError, match="outside"):
        video.get_batch([30])


def test_decord_and_pyav_decode_the_same_pixels(ramp_clip):
    a = open_video(ramp_clip, backend="decord").get_batch([3, 11, 20])
    b = open_video(ramp_clip, backend="pyav").get_batch([3, 11, 20])
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


def test_real_sample_videos():
    paths = sample_video_paths()
    assert {"bikes", "bigbuckbunny", "carphone_pristine"} <= set(paths)
    video = open_video(paths["bikes"])
    assert video.num_frames == 250 and video.fps == pytest.approx(25.0)
    frames = video.get_batch([0, 125, 249])
    assert frames.shape == (3, 272, 640, 3) and frames.std() > 10  # real footage, not a blank frame


def test_fixed_fps_is_the_original_sampling():
    # 25 fps video, 16 frames at 1.6 fps: every 15.625 source frames from frame 0 (the first 10 s).
    idx = sample_frame_indices(300, num_frames=16, mode="fixed_fps", fps=25.0, frame_rate=1.6)
    assert idx.shape == (1, 16)
    np.testing.assert_array_equal(idx[0], np.floor(np.arange(16) * 15.625).astype(int))
    # NTSC rate: 16 frames spaced 29.97 / 1.6 apart.
    idx = sample_frame_indices(400, num_frames=16, mode="fixed_fps", fps=30000 / 1001, frame_rate=1.6)
    np.testing.assert_array_equal(idx[0], np.floor(np.arange(16) * (30000 / 1001) / 1.6).astype(int))


def test_short_video_is_padded_or_looped_never_dropped():
    # A 5 s video at 25 fps (125 frames) cannot hold 10 s: the original loader dropped it.
    pad = sample_frame_indices(125, num_frames=16, mode="fixed_fps", fps=25.0, frame_rate=1.6, short="pad")
    loop = sample_frame_indices(125, num_frames=16, mode="fixed_fps", fps=25.0, frame_rate=1.6, short="loop")
    full = np.floor(np.arange(16) * 15.625).astype(int)
    np.testing.assert_array_equal(pad[0], np.minimum(full, 124))
    np.testing.assert_array_equal(loop[0], full % 125)
    assert pad[0, -1] == 124 and loop[0, -1] == full[-1] % 125
    tiny = sample_frame_indices(3, num_frames=8, mode="segment")
    assert tiny.shape == (1, 8) and tiny.min() >= 0 and tiny.max() <= 2


def test_fixed_fps_views_and_random_start():
    views = sample_frame_indices(1000, num_frames=4, mode="fixed_fps", fps=10.0, frame_rate=1.0, num_views=3)
    np.testing.assert_array_equal(views[:, 0], [0, 484, 969])  # starts spread over the room left (1000 - 31)
    np.testing.assert_array_equal(views - views[:, :1], np.tile([0, 10, 20, 30], (3, 1)))
    gen = torch.Generator().manual_seed(0)
    starts = {
        int(
            sample_frame_indices(
                100, num_frames=4, mode="fixed_fps", fps=10.0, frame_rate=1.0, training=True, generator=gen
            )[0, 0]
        )
        for _ in range(50)
    }
    assert len(starts) > 10 and min(starts) >= 0 and max(starts) <= 69


def test_segment_sampling():
    centre = sample_frame_indices(80, num_frames=8, mode="segment")
    np.testing.assert_array_equal(centre[0], np.arange(8) * 10 + 5)
    views = sample_frame_indices(80, num_frames=8, mode="segment", num_views=2)
    np.testing.assert_array_equal(views, np.stack([np.arange(8) * 10 + 2, np.arange(8) * 10 + 7]))
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        idx = sample_frame_indices(80, num_frames=8, mode="segment", training=True, generator=gen)[0]
        assert ((idx // 10) == np.arange(8)).all()  # one frame inside each segment


def test_uniform_sampling():
    idx = sample_frame_indices(100, num_frames=5, mode="uniform")
    np.testing.assert_array_equal(idx[0], [0, 25, 50, 74, 99])  # rint(linspace(0, 99, 5))
    views = sample_frame_indices(100, num_frames=5, mode="uniform", num_views=2)
    assert (views[0] <= idx[0]).all() and (views[1] >= idx[0]).all() and (views[1] > views[0]).any()
    with pytest.raises(ValueError, match="one view"):
        sample_frame_indices(100, num_frames=5, mode="uniform", training=True, num_views=2)
    with pytest.raises(ValueError, match="frame rate"):
        sample_frame_indices(100, num_frames=5, mode="fixed_fps", fps=None)


def test_transform_center_crop_and_views():
    frames = np.zeros((3, 60, 120, 3), np.uint8)
    frames[:, :, :40] = 255  # bright left third
    out = VideoTransform(size=32, crop="center", zoom=0.5)(frames)  # short side -> 64, crop 32 in the middle
    assert out.shape == (3, 3, 32, 32) and out.dtype == torch.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    three = VideoTransform(size=32, crop="center", zoom=0.5, spatial_views=3)(frames)
    assert three.shape == (3, 3, 3, 32, 32)
    assert three[0].mean() > 0.9 and three[2].mean() < 0.1  # left crop bright, right crop dark
    squish = VideoTransform(size=16, crop="squish", mean=(0.5,) * 3, std=(0.5,) * 3)(frames)
    assert squish.shape == (3, 3, 16, 16) and squish.min() < -0.9 and squish.max() > 0.9
    train = VideoTransform(size=24, crop="random_resized", hflip=1.0)(frames)
    assert train.shape == (3, 3, 24, 24)
    with pytest.raises(ValueError, match="uint8"):
        VideoTransform()(np.zeros((2, 8, 8, 3), np.float32))


def test_load_clip_single_and_multi_view(ramp_clip):
    transform = VideoTransform(size=32, crop="center")
    clip = load_clip(ramp_clip, sampling=ClipSampling(num_frames=4, mode="segment"), transform=transform)
    assert clip.shape == (4, 3, 32, 32)
    order = clip[:, 0, 20, 20]
    assert (order[1:] > order[:-1]).all()  # frames in temporal order (brightness grows with the frame index)
    views = load_clip(
        ramp_clip,
        sampling=ClipSampling(num_frames=4, mode="segment", num_views=2),
        transform=VideoTransform(size=32, crop="center", spatial_views=3),
    )
    assert views.shape == (6, 4, 3, 32, 32)  # 2 temporal x 3 spatial views


def test_read_frames_recovers_with_pyav_when_decord_fails(tmp_path):
    # decord 0.6.0 cannot copy frames 48 pixels wide (row alignment); the automatic backend falls back to PyAV.
    # The clip reaches past AUTO_SEQUENTIAL_FRAMES, so decord is tried first.
    path = write_video(tmp_path / "w48.mp4", _ramp_video(n=320, width=48), fps=25.0)
    frames, indices, video = read_frames(path, lambda n, fps: np.array([[0, 5, 310]]))
    assert frames.shape == (3, 32, 48, 3) and _frame_ids(frames) == [0, 5, 310 % 32]
    assert indices.shape == (1, 3) and video.backend == "pyav"


@pytest.mark.skipif("decord" not in available_backends(), reason="decord has x86-64 wheels only")
def test_auto_backend_follows_the_reach_of_the_clip(tmp_path):
    """PyAV for clips within the first AUTO_SEQUENTIAL_FRAMES frames, decord for random access further in."""
    from miil.stam import auto_backend
    from miil.stam.video import AUTO_SEQUENTIAL_FRAMES

    assert auto_backend(0) == "pyav" and auto_backend(AUTO_SEQUENTIAL_FRAMES - 1) == "pyav"
    assert auto_backend(AUTO_SEQUENTIAL_FRAMES) == "decord"
    path = write_video(tmp_path / "long.mp4", _ramp_video(n=AUTO_SEQUENTIAL_FRAMES + 40), fps=25.0)
    calls = []

    def early(n, fps):
        calls.append(n)
        return np.array([[0, 7, 20]])

    frames, _, video = read_frames(path, early)
    assert video.backend == "pyav" and _frame_ids(frames) == [0, 7, 20] and len(calls) == 1  # indices drawn once
    late = np.array([[5, AUTO_SEQUENTIAL_FRAMES + 20]])
    frames, _, video = read_frames(path, lambda n, fps: late)
    assert video.backend == "decord" and _frame_ids(frames) == [5, (AUTO_SEQUENTIAL_FRAMES + 20) % 32]
    _, _, video = read_frames(path, lambda n, fps: late, backend="pyav")  # an explicit backend is kept
    assert video.backend == "pyav"


def test_write_video_from_an_iterable_with_a_keyframe_interval(tmp_path):
    frames = _ramp_video(n=40)
    path = write_video(tmp_path / "gen.mp4", (f for f in frames), fps=10.0, keyframe_interval=10)
    video = open_video(path, backend="pyav")
    assert video.num_frames == 40 and _frame_ids(video.get_batch([0, 13, 39])) == [0, 13, 39 % 32]
    if "decord" in available_backends():
        keys = open_video(path, backend="decord")._reader.get_key_indices()
        assert len(keys) >= 4 and max(np.diff(keys)) <= 10
    with pytest.raises(ValueError, match="every frame"):
        write_video(tmp_path / "bad.mp4", iter([frames[0], frames[0][:16]]))


def test_truncated_video_is_skipped_and_reported(ramp_clip, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(ramp_clip.read_bytes()[: ramp_clip.stat().st_size // 2])
    samples = [(ramp_clip, 0), (broken, 1), (tmp_path / "missing.mp4", 1)]
    dataset = VideoDataset(
        samples, ["a", "b"], sampling=ClipSampling(num_frames=4, mode="segment"), transform=VideoTransform(size=32)
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = [dataset[i] for i in range(3)]
    assert items[0][0].shape == (4, 3, 32, 32)
    assert items[1] == Skipped(str(broken), items[1].reason) and items[1].reason.startswith("truncated (the 'mdat' box")
    assert items[2] == Skipped(str(tmp_path / "missing.mp4"), "missing")
    messages = [str(w.message) for w in caught if issubclass(w.category, UnreadableFileWarning)]
    assert messages == [
        f"skipping unreadable file {broken}: {items[1].reason}",
        f"skipping unreadable file {items[2].file}: missing",
    ]
    strict = VideoDataset(samples, ["a", "b"], sampling=ClipSampling(num_frames=4, mode="segment"), strict=True)
    with pytest.raises(UnreadableVideoError, match="broken.mp4"):
        strict[1]


def test_write_video_rejects_odd_sizes(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", np.zeros((2, 31, 32, 3), np.uint8))


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_a_cut_matroska_file_that_decodes_partly_is_truncated_not_short(tmp_path, backend):
    """A Matroska clip cut at 60 % still opens and decodes its first frames (PyAV would repeat the last one to the
    promised length, decord would index only the frames present): the segment size in its header gives it away."""
    if backend not in available_backends():
        pytest.skip(f"{backend} is not installed on this platform")
    whole = write_video(tmp_path / "whole.mkv", _ramp_video(n=48), fps=8.0)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 3 // 5])
    with pytest.raises(TruncatedFileError, match="Matroska segment declares") as info:
        read_frames(cut, lambda n, fps: np.arange(0, n, 6), backend=backend)
    assert describe_read_error(cut, info.value, "video").startswith("truncated (the Matroska segment declares")
    frames, _, _ = read_frames(whole, lambda n, fps: np.arange(0, n, 6), backend=backend)
    assert _frame_ids(frames) == [0, 6, 12, 18, 24, 30, 4, 10]  # ids wrap at 32 (brightness 256)


def test_pyav_decoding_that_stops_before_the_stated_frame_count_is_truncated(tmp_path, monkeypatch):
    """An MP4 with its index first (faststart) states every frame; when the media data ends early, decoding stops
    short: that is reported as truncated, not padded with repeats of the last frame."""
    import av

    import miil.stam.video.reader as reader

    path = tmp_path / "faststart.mp4"
    with av.open(str(path), mode="w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        for frame in _ramp_video(n=40):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert reader.container_truncation(cut) is not None  # the box sizes already say so ...
    monkeypatch.setattr(reader, "container_truncation", lambda p: None)  # ... the decoder check stands alone here
    video = open_video(cut, backend="pyav")
    assert video.num_frames == 40 and video.exact_count
    with pytest.raises(TruncatedFileError, match="promises 40 frames"):
        video.get_batch([0, 39])
