"""EAT's training recipes as frozen dataclasses, one per dataset / model row of the paper.

Paper: Gazneli et al., 2022 (arXiv 2204.11479), Sec. 4, and the authors' published commands. Shared by all rows:
AdamW, peak lr 3e-4, betas (0.9, 0.99), weight decay 1e-5 on weights of rank >= 2 only, one-cycle schedule with
10 % warm-up stepped per update, AMP, gradient clipping at 1.0 (norm), sum-reduced losses, and an EMA of the
weights (decay 0.995 per epoch, 0.01 per epoch during the first two) that is evaluated beside the raw weights.

| recipe | data | rate, samples | model | epochs x batch | loss | mix from |
|---|---|---|---|---|---|---|
| ``esc50_eat_s`` | ESC-50, 5 folds | 22.05 kHz, 114688 | EAT-S | 3500 x 128 | LS-CE 0.1 | epoch 12 |
| ``urbansound8k_eat_s`` | UrbanSound8K, 10 folds | 22.05 kHz, 90112 | EAT-S | 3500 x 128 | LS-CE 0.1 | epoch 12 |
| ``speechcommands_v2_35_eat_s`` | Speech Commands V2 | 16 kHz, 16384 | EAT-S, ds 444 | 1500 x 128 | LS-CE 0.1 | 12 |
| ``audioset_eat_m`` | AudioSet, balanced | 22.05 kHz, 221184 | EAT-M | 250 x 208 | BCE | epoch 2 |

AudioSet training turns the noise augmentations off, as the authors' command does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from miil.core.train import TrainConfig

from .augment.mix import MIX_KINDS
from .augment.noise import NOISE_KINDS
from .augment.pipeline import SIGNAL_KINDS, AugmentConfig

__all__ = ["DATASETS", "EATRecipe", "RECIPES"]

DATASETS = ("esc50", "urbansound8k", "speechcommands", "audioset", "folder")


@dataclass(frozen=True)
class EATRecipe(TrainConfig):
    """A full EAT training setting: the engine's options plus model, data, augmentations and loss."""

    # model
    model: str = field(default="eat_s", metadata={"help": "eat_s | eat_m"})
    ds_factors: tuple[int, ...] = field(default=(4, 4, 4, 4), metadata={"help": "strides of the down-sampling stages"})
    base_channels: int | None = field(default=None, metadata={"help": "override the model's stem channels (nf)"})
    embed_dim: int | None = field(default=None, metadata={"help": "override the transformer width"})
    depth: int | None = field(default=None, metadata={"help": "override the transformer depth"})
    num_heads: int | None = field(default=None, metadata={"help": "override the attention heads"})
    mlp_dim: int | None = field(default=None, metadata={"help": "override the feed-forward width"})
    init_checkpoint: str | None = field(
        default=None, metadata={"help": "weights to start from (ours or the original's); head reset if classes differ"}
    )
    # data
    dataset: str = field(
        default="esc50", metadata={"help": "esc50 | urbansound8k | speechcommands | audioset | folder"}
    )
    data_root: str = field(default="", metadata={"help": "dataset folder"})
    fold: int | None = field(default=1, metadata={"help": "held-out fold (ESC-50 1-5, UrbanSound8K 1-10)"})
    train_split: str = field(default="train", metadata={"help": "training split (SpeechCommands, AudioSet, folder)"})
    val_split: str = field(default="val", metadata={"help": "validation split (SpeechCommands, AudioSet, folder)"})
    sample_rate: int = field(default=22050, metadata={"help": "clips are resampled to this rate (Hz)"})
    seq_len: int = field(default=114688, metadata={"help": "clip length in samples"})
    num_classes: int = field(default=50, metadata={"help": "classifier outputs (0: from the dataset)"})
    cache_dir: str | None = field(default=None, metadata={"help": "folder for resampled copies (resample once)"})
    strict: bool = field(default=False, metadata={"help": "stop at unreadable files instead of skipping them"})
    balanced_sampler: bool = field(default=False, metadata={"help": "inverse class-frequency sampling (AudioSet)"})
    # loss
    loss: str = field(default="label_smoothing", metadata={"help": "label_smoothing | ce | bce (multi-label)"})
    label_smoothing: float = field(default=0.1, metadata={"help": "label smoothing of the CE loss"})
    loss_reduction: str = field(default="sum", metadata={"help": "sum (the original) | mean"})
    mix_threshold: float = field(default=0.9, metadata={"help": "partner label counts when own weight is below"})
    # augmentations
    aug_signal: tuple[str, ...] = field(default=SIGNAL_KINDS, metadata={"help": "per-sample signal augmentations"})
    aug_noise: tuple[str, ...] = field(default=NOISE_KINDS, metadata={"help": "noise kinds (one drawn per sample)"})
    aug_p: float = field(default=0.5, metadata={"help": "probability of each per-sample augmentation"})
    noise_snr_db: tuple[float, float] = field(default=(30.0, 30.0), metadata={"help": "SNR range of added noise"})
    resample_factors: tuple[float, ...] = field(
        default=(0.8, 0.9, 1.1, 1.2), metadata={"help": "batch resampling factors"}
    )
    resample_p: float = field(default=0.5, metadata={"help": "probability of resampling a batch"})
    mix: tuple[str, ...] = field(default=MIX_KINDS, metadata={"help": "mixes: mixup timemix freqmix phmix"})
    mix_p: float = field(default=1.0, metadata={"help": "probability of mixing a batch"})
    mix_start_epoch: int = field(default=12, metadata={"help": "first (0-based) epoch with mixing"})
    # EMA schedule of the original
    ema_decay_per_epoch: float = field(default=0.995, metadata={"help": "EMA decay per epoch"})
    ema_warmup_epochs: int = field(default=2, metadata={"help": "epochs with the short-term EMA decay"})
    ema_warmup_decay: float = field(default=0.01, metadata={"help": "EMA decay per epoch during warm-up"})

    def augment_config(self) -> AugmentConfig:
        """The augmentation switches of this recipe."""
        return AugmentConfig(
            signal=self.aug_signal,
            noise=self.aug_noise,
            p=self.aug_p,
            snr_db=tuple(self.noise_snr_db),
            resample_factors=self.resample_factors,
            resample_p=self.resample_p,
            mix=self.mix,
            mix_p=self.mix_p,
            mix_start_epoch=self.mix_start_epoch,
        )

    @property
    def multilabel(self) -> bool:
        return self.loss == "bce"


_COMMON = dict(
    opt="adamw",
    lr=3e-4,
    opt_betas=(0.9, 0.99),
    opt_eps=1e-4,
    weight_decay=1e-5,
    sched="onecycle",
    pct_start=0.1,
    sched_on_updates=True,
    amp=True,
    clip_grad=1.0,
    ema=True,
    ema_decay=0.9999,
    batch_size=128,
)

RECIPES: dict[str, EATRecipe] = {
    "esc50_eat_s": EATRecipe(
        **_COMMON,
        out_dir="runs/esc50_eat_s",
        epochs=3500,
        eval_metric="top1",
        dataset="esc50",
        model="eat_s",
        sample_rate=22050,
        seq_len=114688,
        num_classes=50,
        fold=1,
    ),
    "urbansound8k_eat_s": EATRecipe(
        **_COMMON,
        out_dir="runs/urbansound8k_eat_s",
        epochs=3500,
        eval_metric="top1",
        dataset="urbansound8k",
        model="eat_s",
        sample_rate=22050,
        seq_len=90112,
        num_classes=10,
        fold=1,
    ),
    "speechcommands_v2_35_eat_s": EATRecipe(
        **_COMMON,
        out_dir="runs/speechcommands_v2_35_eat_s",
        epochs=1500,
        eval_metric="top1",
        dataset="speechcommands",
        model="eat_s",
        ds_factors=(4, 4, 4),
        sample_rate=16000,
        seq_len=16384,
        num_classes=35,
        fold=None,
        train_split="train",
        val_split="validation",
    ),
    "audioset_eat_m": EATRecipe(
        **{**_COMMON, "batch_size": 208},
        out_dir="runs/audioset_eat_m",
        epochs=250,
        eval_metric="mAP",
        dataset="audioset",
        model="eat_m",
        sample_rate=22050,
        seq_len=221184,
        num_classes=527,
        fold=None,
        train_split="balanced_train_segments",
        val_split="eval_segments",
        balanced_sampler=True,
        loss="bce",
        aug_noise=(),
        mix_start_epoch=2,
    ),
}
