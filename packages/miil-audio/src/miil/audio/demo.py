"""The miil-audio demo: EAT-S learns spoken keywords from raw waveforms, with and without the paper's augmentations.

Paper: Gazneli et al., 2022 (arXiv 2204.11479): an end-to-end model on raw audio generalises when it is trained with
strong waveform augmentations (Sec. 3.3). Data: keywords synthesised offline by espeak-ng (bundled in the
``espeakng-loader`` wheel) with many voices, accents, rates and pitches; real recorded sounds from the
``pygame-ce`` wheel serve as background noise.

- Training set: the keywords of some speakers, clean and starting at the beginning of the clip (as synthesised).
- Held-out set: other speakers (voices never heard in training) "in the wild": each word starts at a random moment
  of the first ``max_onset_s`` seconds, its polarity is inverted half of the time (as a microphone wired the other
  way round does) and a real recorded sound is mixed in at ``snr_db`` dB (30 dB, the SNR of the paper's noises).

The same EAT-S (SpeechCommands configuration with two 4x down-sampling stages for 1 s clips at 4 kHz) is trained by
the same engine and recipe twice: with every augmentation of the paper (per-sample signal and noise augmentations,
batch resampling, and the four mixes in the last third of the run), and with none. BatchNorm statistics are
re-estimated on the clean training clips before scoring, since such short runs cannot forget BN's initial
statistics (see :func:`miil.audio.training.recalibrate_batchnorm`). ``passed`` is True when the augmented model is
more accurate on the held-out speakers in the wild than the baseline, and above 1.5 times chance.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from miil.core.extras import locate

from .data.datasets import InMemoryAudioDataset
from .data.speech import KEYWORDS, keyword_dataset, make_speakers
from .io import load_audio, resample_audio
from .recipes import RECIPES, EATRecipe
from .training import evaluate, load_run, recalibrate_batchnorm, train

__all__ = ["DemoConfig", "keyword_task", "run_demo"]

BACKGROUNDS = ("house_lo.ogg", "secosmic_lo.wav", "boom.wav", "car_door.wav", "punch.wav", "whiff.wav")


@dataclass(frozen=True)
class DemoConfig:
    """Size of the demo.

    Args:
        words: Keywords (classes).
        train_speakers: Synthetic speakers in the training set.
        test_speakers: Other speakers in the held-out set.
        epochs: Training epochs of each model.
        sample_rate: Rate of the clips.
        seq_len: Clip length in samples.
        batch_size: Batch size.
        lr: Peak learning rate of the one-cycle schedule.
        mix_start_epoch: First epoch with the label-mixing augmentations.
        max_onset_s: Held-out words start at a random moment of the first this-many seconds.
        snr_db: Level of the real background sound in the held-out clips.
        wild_copies: Held-out renditions of each held-out clip (different onsets and backgrounds).
        seed: Seed of speakers, held-out conditions and training.
    """

    words: tuple[str, ...] = KEYWORDS[:6]
    train_speakers: int = 20
    test_speakers: int = 10
    epochs: int = 6
    sample_rate: int = 4000
    seq_len: int = 4096
    batch_size: int = 16
    lr: float = 1e-3
    mix_start_epoch: int = 4
    max_onset_s: float = 0.25
    snr_db: float = 30.0
    wild_copies: int = 3
    seed: int = 0


def _backgrounds(sample_rate: int) -> list[np.ndarray]:
    purpose = "the audio demo's background sounds (pygame-ce's example wavs)"
    folder = locate("pygame", distribution="miil-audio", extra="demo", purpose=purpose) / "examples" / "data"
    return [load_audio(folder / name, sample_rate=sample_rate)[0] for name in BACKGROUNDS]


def _in_the_wild(clip: np.ndarray, cfg: DemoConfig, backgrounds: list[np.ndarray], rng: np.random.Generator):
    clip = clip[: cfg.seq_len]
    out = np.zeros(cfg.seq_len, dtype=np.float32)
    latest = int(min(cfg.seq_len - len(clip), cfg.max_onset_s * cfg.sample_rate))
    onset = int(rng.integers(0, latest + 1))
    out[onset : onset + len(clip)] = clip if rng.random() < 0.5 else -clip
    bg = backgrounds[int(rng.integers(len(backgrounds)))]
    bg = np.tile(bg, cfg.seq_len // len(bg) + 2)
    start = int(rng.integers(0, len(bg) - cfg.seq_len))
    bg = bg[start : start + cfg.seq_len]
    scale = np.sqrt(np.mean(clip**2) / (np.mean(bg**2) + 1e-12) * 10 ** (-cfg.snr_db / 10))
    return (out + scale * bg).astype(np.float32)


def keyword_task(cfg: DemoConfig) -> dict[str, InMemoryAudioDataset]:
    """The demo's data: ``train`` (random crops), ``train_clean`` (for BN statistics), ``test`` and ``test_clean``.

    Args:
        cfg: Demo size.
    """
    speakers = make_speakers(cfg.train_speakers + cfg.test_speakers, seed=cfg.seed)
    clips, labels, names, rate = keyword_dataset(speakers, words=cfg.words)
    clips = [resample_audio(c, rate, cfg.sample_rate) for c in clips]
    n_train = cfg.train_speakers * len(cfg.words)
    rng = np.random.default_rng(cfg.seed + 1)
    backgrounds = _backgrounds(cfg.sample_rate)
    held = list(zip(clips[n_train:], labels[n_train:])) * cfg.wild_copies
    wild = [_in_the_wild(c, cfg, backgrounds, rng) for c, _ in held]
    kw = dict(classes=list(cfg.words), seq_len=cfg.seq_len)
    return {
        "train": InMemoryAudioDataset(clips[:n_train], labels[:n_train], train=True, **kw),
        "train_clean": InMemoryAudioDataset(clips[:n_train], labels[:n_train], **kw),
        "test": InMemoryAudioDataset(wild, [y for _, y in held], **kw),
        "test_clean": InMemoryAudioDataset(clips[n_train:], labels[n_train:], **kw),
    }


def demo_recipe(cfg: DemoConfig, *, augment: bool, out_dir: str) -> EATRecipe:
    """The SpeechCommands EAT-S recipe, shortened for the demo; ``augment=False`` switches every augmentation off.

    Args:
        cfg: Demo size.
        augment: Keep the paper's augmentations.
        out_dir: Run folder.
    """
    recipe = dataclasses.replace(
        RECIPES["speechcommands_v2_35_eat_s"],
        out_dir=out_dir,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        opt_eps=1e-8,
        loss_reduction="mean",
        amp=False,
        ema=False,
        device="cpu",
        progress=False,
        seed=cfg.seed,
        num_classes=len(cfg.words),
        sample_rate=cfg.sample_rate,
        seq_len=cfg.seq_len,
        ds_factors=(4, 4),
        mix_start_epoch=cfg.mix_start_epoch,
    )
    if not augment:
        recipe = dataclasses.replace(
            recipe, aug_signal=(), aug_noise=(), resample_factors=(), resample_p=0.0, mix=(), mix_p=0.0
        )
    return recipe


def _train_and_score(cfg: DemoConfig, data: dict, *, augment: bool, root: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    recipe = demo_recipe(cfg, augment=augment, out_dir=str(root / ("augmented" if augment else "baseline")))
    result = train(recipe, train_dataset=data["train"], classes=list(cfg.words))
    model, _, _ = load_run(result.out_dir)
    recalibrate_batchnorm(model, DataLoader(data["train_clean"], batch_size=64))
    scores = {name: evaluate(model, data[name], device="cpu")["top1"] for name in ("test", "test_clean", "train_clean")}
    scores["seconds"] = time.perf_counter() - t0
    return scores


def run_demo(*, long: bool = False, seed: int = 0, config: DemoConfig | None = None) -> dict:
    """Train EAT-S with and without augmentations on spoken keywords; compare held-out accuracy.

    Args:
        long: Longer run (more speakers, all ten keywords, more epochs).
        seed: Seed of data and training.
        config: A custom size instead of the default or long one.
    """
    cfg = config or DemoConfig(seed=seed)
    if long and config is None:
        cfg = dataclasses.replace(
            cfg, words=KEYWORDS, train_speakers=30, test_speakers=15, epochs=60, mix_start_epoch=40, batch_size=32
        )
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    data = keyword_task(cfg)
    print(
        f"spoken keywords {', '.join(cfg.words)}: {len(data['train'])} training clips from {cfg.train_speakers} "
        f"voices, {len(data['test_clean'])} held-out clips from {cfg.test_speakers} other voices, each also in "
        f"{cfg.wild_copies} wild renditions "
        f"(onset up to {cfg.max_onset_s} s, random polarity, real background at {cfg.snr_db:.0f} dB); "
        f"{cfg.sample_rate} Hz, "
        f"{cfg.seq_len} samples, {cfg.epochs} epochs ({time.perf_counter() - t0:.1f} s to synthesise)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="miil-demo-audio-") as tmp:
        base = _train_and_score(cfg, data, augment=False, root=Path(tmp))
        aug = _train_and_score(cfg, data, augment=True, root=Path(tmp))
    chance = 100.0 / len(cfg.words)
    print("| EAT-S from raw waveforms | held-out voices, in the wild | held-out voices, clean | training clips | s |")
    print("|---|---|---|---|---|")
    for name, s in (("no augmentation (baseline)", base), ("paper's augmentations", aug)):
        print(f"| {name} | {s['test']:.1f} | {s['test_clean']:.1f} | {s['train_clean']:.1f} | {s['seconds']:.0f} |")
    print(f"chance: {chance:.1f} %", flush=True)
    passed = aug["test"] > base["test"] and aug["test"] > 1.5 * chance
    return {
        "passed": passed,
        "metrics": {
            "augmented_heldout_top1": aug["test"],
            "baseline_heldout_top1": base["test"],
            "augmented_clean_heldout_top1": aug["test_clean"],
            "baseline_clean_heldout_top1": base["test_clean"],
            "chance": chance,
        },
        "summary": (
            f"held-out keyword accuracy with augmentations {aug['test']:.1f}% vs without {base['test']:.1f}% "
            f"(chance {chance:.1f}%)"
        ),
    }
