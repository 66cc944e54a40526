"""EAT's training recipes as frozen dataclasses, one per dataset / model row of the paper.

Paper: Gazneli et al., 2022 (arXiv 2204.11479), Sec. 4, and the authors' published commands. Shared by all rows:
AdamW, peak lr 3e-4, betas (0.9, 0.99), weight decay 1e-5 on weights of rank >= 2 only, one-cycle schedule with
10 % warm-up stepped per update, AMP, gradient clipping at 1.0 (norm), sum-reduced losses, and an EMA of the
weights (decay 0.995 per epoch, 0.01 per epoch during the first two) that is evaluated beside the raw weights.

| recipe | data | rate, samples | model | epochs x batch | loss | mix from |
|---|---|---|---|---|---|---|
| ``esc50-eat-s`` | ESC-50, 5 folds (50 classes) | 22.05 kHz, 114688 | EAT-S | 3500 x 128 | LS-CE 0.1 | epoch 12 |
| ``urbansound8k-eat-s`` | UrbanSound8K, 10 folds (10) | 22.05 kHz, 90112 | EAT-S | 3500 x 128 | LS-CE 0.1 | epoch 12 |
| ``speechcommands-v2-35-eat-s`` | Speech Commands V2 (35) | 16 kHz, 16384 | EAT-S 444 | 1500 x 128 | LS-CE 0.1 | 12 |
| ``audioset-eat-m`` | AudioSet, balanced (527) | 22.05 kHz, 221184 | EAT-M | 250 x 208 | BCE | epoch 2 |

AudioSet training turns the noise augmentations off, as the authors' command does. The class count is read from the
data (``num_classes=0``), so a subset of a corpus (ESC-10, a miniature copy) trains with the same recipe; a count
given with ``--num-classes`` must match the data. This module imports no torch (the CLI builds its parsers from it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from miil.core.train import TrainConfig

from .kinds import MIX_KINDS, NOISE_KINDS, SIGNAL_KINDS

__all__ = ["DATA_FORMATS", "EATRecipe", "MULTILABEL_FORMATS", "RECIPES", "default_splits"]

DATA_FORMATS = ("esc50", "urbansound8k", "speechcommands", "audioset", "folder")
#: Formats whose clips carry several labels (the others have one class per clip).
MULTILABEL_FORMATS = ("audioset",)
_FOLDS = {"esc50": 5, "urbansound8k": 10}


def default_splits(data_format: str) -> tuple[str, str]:
    """``(train split, validation split)`` of a data format when the recipe leaves them unset.

    ESC-50 and UrbanSound8K: the validation split is the held-out fold (``"1"``) and training takes the other folds
    (``"rest"``); Speech Commands: the official ``train`` / ``validation`` lists; AudioSet: the segment CSVs
    ``balanced_train_segments`` / ``eval_segments``; class folders: ``train`` / ``val`` under the data root.

    Args:
        data_format: One of :data:`DATA_FORMATS`.
    """
    if data_format in _FOLDS:
        return "rest", "1"
    return {
        "speechcommands": ("train", "validation"),
        "audioset": ("balanced_train_segments", "eval_segments"),
        "folder": ("train", "val"),
    }[data_format]


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
    data_format: str = field(
        default="esc50", metadata={"help": "esc50 | urbansound8k | speechcommands | audioset | folder"}
    )
    data_root: str = field(default="", metadata={"help": "the dataset's top folder, as the dataset is distributed"})
    train_split: str | None = field(
        default=None,
        metadata={"help": "training part: folds '2,3,4' or 'rest' (ESC-50, UrbanSound8K), a list or folder name"},
    )
    val_split: str | None = field(
        default=None,
        metadata={"help": "validation part: the held-out fold (ESC-50 1-5, UrbanSound8K 1-10), a list or folder name"},
    )
    train_labels: str | None = field(default=None, metadata={"help": "training metadata CSV / list, if moved"})
    val_labels: str | None = field(default=None, metadata={"help": "validation metadata CSV / list, if moved"})
    sample_rate: int = field(default=22050, metadata={"help": "clips are resampled to this rate (Hz)"})
    seq_len: int = field(default=114688, metadata={"help": "clip length in samples"})
    num_classes: int = field(default=0, metadata={"help": "classifier outputs (0: from the data)"})
    cache_dir: str | None = field(default=None, metadata={"help": "folder for resampled copies (resample once)"})
    strict: bool = field(default=False, metadata={"help": "stop at the first unreadable input instead of skipping it"})
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

    def augment_config(self) -> Any:
        """The augmentation switches of this recipe (an :class:`~miil.audio.augment.AugmentConfig`)."""
        from .augment.pipeline import AugmentConfig

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

    def splits(self) -> tuple[str, str]:
        """The training and validation splits, the format's defaults filling the unset ones."""
        train, val = default_splits(self.data_format) if self.data_format in DATA_FORMATS else (None, None)
        return self.train_split or train, self.val_split or val


class _RecipeTable(dict):
    """The recipes by kebab-case name; the earlier snake_case names (``esc50_eat_s``) still resolve, for scripts
    written before the rename. The CLI offers only the kebab-case names."""

    def __missing__(self, key: Any) -> EATRecipe:
        if isinstance(key, str) and "_" in key and key.replace("_", "-") in self:
            return self[key.replace("_", "-")]
        raise KeyError(key)


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

RECIPES: dict[str, EATRecipe] = _RecipeTable(
    {
        "esc50-eat-s": EATRecipe(
            **_COMMON,
            out_dir="runs/esc50-eat-s",
            epochs=3500,
            eval_metric="top1",
            data_format="esc50",
            model="eat_s",
            sample_rate=22050,
            seq_len=114688,
        ),
        "urbansound8k-eat-s": EATRecipe(
            **_COMMON,
            out_dir="runs/urbansound8k-eat-s",
            epochs=3500,
            eval_metric="top1",
            data_format="urbansound8k",
            model="eat_s",
            sample_rate=22050,
            seq_len=90112,
        ),
        "speechcommands-v2-35-eat-s": EATRecipe(
            **_COMMON,
            out_dir="runs/speechcommands-v2-35-eat-s",
            epochs=1500,
            eval_metric="top1",
            data_format="speechcommands",
            model="eat_s",
            ds_factors=(4, 4, 4),
            sample_rate=16000,
            seq_len=16384,
        ),
        "audioset-eat-m": EATRecipe(
            **{**_COMMON, "batch_size": 208},
            out_dir="runs/audioset-eat-m",
            epochs=250,
            eval_metric="mAP",
            data_format="audioset",
            model="eat_m",
            sample_rate=22050,
            seq_len=221184,
            balanced_sampler=True,
            loss="bce",
            aug_noise=(),
            mix_start_epoch=2,
        ),
    }
)
