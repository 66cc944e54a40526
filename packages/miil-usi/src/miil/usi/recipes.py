"""The USI preset as data: one frozen recipe, unchanged for every backbone, and the paper's rows that use it.

Paper: USI (arXiv 2204.03475): the training configuration, Figure 1c (top-1 of each backbone with USI vs. its
previous best recipe) and Table 5 (LeViT-384 with longer schedules, as quoted). Values are the defaults of the
authors' ``train.py`` (timm 0.5.4 fork). Two explicit choices differ from that script's behaviour:

* ``cooldown_epochs`` is 0: timm 0.5.4 added its 10 cooldown epochs silently, so the original ran 310 epochs. Pass
  ``--cooldown-epochs 10`` to reproduce that.
* repeated augmentation works with one process too (the original crashed on one GPU).

The learning rate is absolute, as in the paper (2e-3 for 8 x 128 images); ``lr_base_batch`` scales it linearly with
the global batch when set.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from miil.core.train import TrainConfig

__all__ = ["DEFAULT_TEACHER", "PAPER_RESULTS", "RECIPES", "USI", "PaperResult", "USIRecipe"]

# The paper's teacher: TResNet-L-V2, IN-21K pretrained, fine-tuned on IN-1K (83.9% top-1), by its timm name.
DEFAULT_TEACHER = "tresnet_v2_l.miil_in21k_ft_in1k"


@dataclass(frozen=True)
class USIRecipe(TrainConfig):
    """USI training configuration (the authors' ``train.py`` defaults); ``miil usi train --model X`` uses it as is."""

    out_dir: str = field(default="runs/usi", metadata={"help": "run directory (checkpoints, metrics, config)"})
    model: str = field(default="resnet50", metadata={"help": "student: any timm model name"})
    model_kwargs: str = field(default="{}", metadata={"help": "extra timm.create_model arguments as a JSON object"})
    pretrained: bool = field(
        default=False, metadata={"help": "start the student from timm's pretrained weights (downloads; paper: off)"}
    )
    num_classes: int = field(default=1000, metadata={"help": "number of classes"})
    img_size: int = field(default=224, metadata={"help": "training and evaluation image side"})
    drop_path_rate: float | None = field(default=None, metadata={"help": "stochastic depth; None: the model's default"})
    mean: tuple[float, float, float] | None = field(default=None, metadata={"help": "student mean; None: timm's"})
    std: tuple[float, float, float] | None = field(default=None, metadata={"help": "student std; None: timm's"})
    channels_last: bool = field(default=False, metadata={"help": "student in channels-last memory format"})

    teacher: str = field(default=DEFAULT_TEACHER, metadata={"help": "KD teacher: timm name, or 'none' for no KD"})
    teacher_checkpoint: str | None = field(default=None, metadata={"help": "teacher weights file (safe loader)"})
    teacher_pretrained: bool = field(
        default=True, metadata={"help": "download the teacher's timm weights when no --teacher-checkpoint is given"}
    )
    teacher_mean: tuple[float, float, float] | None = field(
        default=None, metadata={"help": "teacher mean; None: timm's"}
    )
    teacher_std: tuple[float, float, float] | None = field(default=None, metadata={"help": "teacher std; None: timm's"})
    teacher_fuse_bn: bool = field(default=True, metadata={"help": "fold the teacher's batch norms"})
    teacher_channels_last: bool = field(default=False, metadata={"help": "teacher in channels-last format"})
    teacher_compile: bool = field(default=False, metadata={"help": "torch.compile the teacher"})
    teacher_logits: str | None = field(default=None, metadata={"help": "precomputed teacher logits (.npy)"})

    kd_weight: float = field(default=5.0, metadata={"help": "weight of the KD term (the paper's alpha_kd)"})
    kd_temperature: float = field(default=1.0, metadata={"help": "KD softmax temperature (KL scaled by T^2)"})
    gt_weight: float = field(default=1.0, metadata={"help": "weight of the ground-truth soft CE term"})
    kd_only: bool = field(default=False, metadata={"help": "drop the ground-truth term"})

    mixup: float = field(default=0.8, metadata={"help": "mixup alpha (0: off)"})
    cutmix: float = field(default=1.0, metadata={"help": "cutmix alpha (0: off)"})
    mixup_prob: float = field(default=1.0, metadata={"help": "probability of mixing a batch"})
    mixup_switch_prob: float = field(default=0.5, metadata={"help": "probability of cutmix instead of mixup"})
    mixup_mode: str = field(default="batch", metadata={"help": "batch | pair | elem"})
    label_smoothing: float = field(default=0.0, metadata={"help": "label smoothing"})
    randaug: str = field(default="rand-m7-mstd0.5-inc1", metadata={"help": "timm RandAugment ('' for none)"})
    scale: tuple[float, float] = field(default=(0.08, 1.0), metadata={"help": "RandomResizedCrop scale"})
    ratio: tuple[float, float] = field(default=(0.75, 4.0 / 3.0), metadata={"help": "RandomResizedCrop ratio"})
    hflip: float = field(default=0.5, metadata={"help": "horizontal flip probability"})
    interpolation: str = field(default="bicubic", metadata={"help": "resize interpolation"})
    reprob: float = field(default=0.0, metadata={"help": "random erasing probability"})
    aug_repeats: int = field(default=3, metadata={"help": "repeated augmentation copies (1: off)"})
    aug_repeats_epoch: str = field(default="dataset", metadata={"help": "dataset | repeats: epoch length with RA"})
    crop_pct: float = field(default=0.95, metadata={"help": "evaluation center-crop fraction"})
    strict: bool = field(default=False, metadata={"help": "stop at the first unreadable image instead of skipping it"})
    lr_base_batch: int | None = field(default=None, metadata={"help": "scale lr by global batch / this"})

    epochs: int = field(default=300, metadata={"help": "number of epochs"})
    batch_size: int = field(default=128, metadata={"help": "batch size per process"})
    opt: str = field(default="adamw", metadata={"help": "any timm optimizer name"})
    lr: float = field(default=2e-3, metadata={"help": "peak learning rate"})
    weight_decay: float = field(default=2e-2, metadata={"help": "weight decay (not on biases and norms)"})
    sched: str = field(default="cosine", metadata={"help": "timm scheduler name, 'onecycle' or 'none'"})
    sched_on_updates: bool = field(default=False, metadata={"help": "per-update schedule (the original: per epoch)"})
    warmup_epochs: int = field(default=5, metadata={"help": "linear warm-up epochs"})
    warmup_lr: float = field(default=1e-4, metadata={"help": "learning rate at the start of warm-up"})
    min_lr: float = field(default=1e-6, metadata={"help": "floor of the schedule"})
    cooldown_epochs: int = field(default=0, metadata={"help": "epochs at min_lr after the schedule (original: 10)"})
    amp: bool = field(default=True, metadata={"help": "mixed precision (bf16 on CPU, fp16 on CUDA)"})
    ema: bool = field(default=True, metadata={"help": "keep an EMA of the weights; keep-best of EMA vs raw"})
    ema_decay: float = field(default=0.99996, metadata={"help": "EMA decay per update"})
    eval_metric: str | None = field(default="top1", metadata={"help": "metric for keep-best"})

    @property
    def kd(self) -> bool:
        """Whether this run distills (from a teacher or from stored teacher logits)."""
        return self.teacher_logits is not None or self.teacher.lower() not in ("", "none")


@dataclass(frozen=True)
class PaperResult:
    """One row of the paper: a backbone, its ImageNet-1K top-1 with USI and with its previous best recipe.

    Args:
        model: timm model name.
        top1: Top-1 (%) with USI.
        previous_top1: Top-1 (%) of the previous best recipe (Figure 1c), if given.
        epochs: Training epochs.
        source: Where the number comes from.
    """

    model: str
    top1: float
    previous_top1: float | None = None
    epochs: int = 300
    source: str = "Figure 1c"


PAPER_RESULTS: dict[str, PaperResult] = {
    "usi-resnet50": PaperResult("resnet50", 81.0, 80.4),
    "usi-tresnet-m": PaperResult("tresnet_m", 82.4, 80.7),
    "usi-convnext-s": PaperResult("convnext_small", 84.0, 83.1),
    "usi-regnety-32": PaperResult("regnety_320", 82.8, 81.0),
    "usi-vit-s": PaperResult("vit_small_patch16_224", 81.8, 81.2),
    "usi-levit-384": PaperResult("levit_384", 82.7, 82.6),
    "usi-swin-s": PaperResult("swin_small_patch4_window7_224", 84.0, 83.2),
    "usi-tnt-s": PaperResult("tnt_s_patch16_224", 82.5, 81.5),
    "usi-efficientnet-b0": PaperResult("efficientnet_b0", 79.3, 77.1),
    "usi-mobilenetv3-l": PaperResult("mobilenetv3_large_100", 77.3, 75.2),
    "usi-mixer-b": PaperResult("mixer_b16_224", 82.0, 76.4),
    "usi-resmlp-s12": PaperResult("resmlp_12_224", 78.8, 77.8),
    "usi-edgenext-s": PaperResult("edgenext_small", 81.1, None, source="MODEL_ZOO.md"),
    **{
        f"usi-levit-384-e{e}": PaperResult("levit_384", top1, None, epochs=e, source="Table 5")
        for e, top1 in ((100, 80.0), (200, 81.9), (300, 82.7), (600, 83.0), (1000, 83.2))
    },
}

USI = USIRecipe()

RECIPES: dict[str, USIRecipe] = {
    "usi": USI,
    **{name: dataclasses.replace(USI, model=row.model, epochs=row.epochs) for name, row in PAPER_RESULTS.items()},
}
