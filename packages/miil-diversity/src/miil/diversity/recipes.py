"""Recipes as data: the pretraining procedure (self-supervised init, then USI's KD recipe) and the transfer harness.

Paper: "Diverse ImageNet Models Transfer Better" (arXiv 2204.09134 / WACV 2024). The paper's tables could not be
retrieved, so the rows are named after the comparison the paper makes rather than table numbers:

* ``usi-supervised``: random initialisation, then USI supervised KD training (the accurate, less diverse baseline);
* ``ssl-usi``: this package's self-supervised stage (SimCLR NT-Xent), then the same USI training (the method);
* ``dino-usi-vit-s`` / ``dino-usi-resnet50``: a released DINO checkpoint (timm's ``vit_small_patch16_224.dino``
  weights, or the file ``dino_resnet50_pretrain.pth`` a user brings), then the same USI training.

The supervised stage is the :data:`miil.usi.USI` preset unchanged (loss, teacher, optimizer, augmentation, EMA).
Self-supervised hyperparameters follow SimCLR's small-batch setting (our choice). Transfer uses fixed hyperparameters
for every model (``linear-probe``, ``fine-tune``): our choice, since the paper's values could not be retrieved.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from miil.core.train import TrainConfig
from miil.usi.recipes import USIRecipe

__all__ = ["FINE_TUNE", "INITS", "LINEAR_PROBE", "RECIPES", "TRANSFER_RECIPES", "DiversityRecipe", "TransferRecipe"]

# random: timm's initialisation; ssl: SimCLR trained here first; dino: a released self-supervised checkpoint
# (--init-checkpoint FILE in DINO's or timm's layout, or --pretrained for timm's weights of a `.dino` model).
INITS = ("random", "ssl", "dino")


@dataclass(frozen=True)
class DiversityRecipe(USIRecipe):
    """USI's recipe plus the self-supervised initialisation that precedes it."""

    out_dir: str = field(default="runs/diversity", metadata={"help": "run directory (ssl/ and supervised/ inside)"})
    init: str = field(default="ssl", metadata={"help": "random | ssl (train SimCLR here first) | dino (released SSL)"})
    init_checkpoint: str | None = field(
        default=None,
        metadata={"help": "init=dino: self-supervised weights file (DINO release or training checkpoint, converted)"},
    )
    ssl_epochs: int = field(default=100, metadata={"help": "self-supervised epochs (init=ssl)"})
    ssl_batch_size: int = field(default=256, metadata={"help": "self-supervised batch size per process"})
    ssl_lr: float = field(default=1e-3, metadata={"help": "self-supervised AdamW learning rate"})
    ssl_weight_decay: float = field(default=1e-6, metadata={"help": "self-supervised weight decay"})
    ssl_warmup_epochs: int = field(default=10, metadata={"help": "self-supervised warm-up epochs"})
    ssl_temperature: float = field(default=0.2, metadata={"help": "NT-Xent temperature"})
    ssl_proj_hidden: int = field(default=512, metadata={"help": "projection head hidden width"})
    ssl_proj_dim: int = field(default=128, metadata={"help": "projection head output width"})
    ssl_scale: tuple[float, float] = field(default=(0.2, 1.0), metadata={"help": "SSL RandomResizedCrop scale"})
    log_diversity: bool = field(default=True, metadata={"help": "measure diversity at every validation"})

    def __post_init__(self):
        if self.init not in INITS:
            raise ValueError(f"--init must be one of {', '.join(INITS)}, got {self.init!r}")


_BASE = DiversityRecipe()  # every USI field at the USI preset's value

RECIPES: dict[str, DiversityRecipe] = {
    "usi-supervised": dataclasses.replace(_BASE, init="random"),
    "ssl-usi": dataclasses.replace(_BASE, init="ssl"),
    "dino-usi-vit-s": dataclasses.replace(_BASE, init="dino", model="vit_small_patch16_224.dino", pretrained=True),
    "dino-usi-resnet50": dataclasses.replace(
        _BASE, init="dino", model="resnet50", init_checkpoint="dino_resnet50_pretrain.pth"
    ),
}


@dataclass(frozen=True)
class TransferRecipe(TrainConfig):
    """Fixed transfer hyperparameters, the same for every pretrained model compared."""

    out_dir: str = field(default="runs/transfer", metadata={"help": "run directory"})
    mode: str = field(default="linear", metadata={"help": "linear (frozen features) | finetune (whole model)"})
    task: str = field(default="single", metadata={"help": "single (top-1) | multi (mAP, ASL loss)"})
    img_size: int = field(default=224, metadata={"help": "input side"})
    crop_pct: float = field(default=0.875, metadata={"help": "evaluation center-crop fraction"})
    hflip: float = field(default=0.5, metadata={"help": "fine-tuning horizontal flip probability"})
    scale: tuple[float, float] = field(default=(0.5, 1.0), metadata={"help": "fine-tuning RandomResizedCrop scale"})
    gamma_neg: float = field(default=4.0, metadata={"help": "multi-label ASL gamma for negatives"})
    gamma_pos: float = field(default=0.0, metadata={"help": "multi-label ASL gamma for positives"})
    clip: float = field(default=0.05, metadata={"help": "multi-label ASL probability margin"})
    epochs: int = field(default=30, metadata={"help": "number of epochs"})
    batch_size: int = field(default=128, metadata={"help": "batch size per process"})
    lr: float = field(default=1e-2, metadata={"help": "peak learning rate"})
    weight_decay: float = field(default=0.0, metadata={"help": "weight decay"})
    warmup_epochs: int = field(default=0, metadata={"help": "linear warm-up epochs"})
    drop_last: bool = field(default=False, metadata={"help": "drop the last incomplete training batch"})

    def __post_init__(self):
        if self.mode not in ("linear", "finetune"):
            raise ValueError(f"transfer mode must be 'linear' or 'finetune', got {self.mode!r}")
        if self.task not in ("single", "multi"):
            raise ValueError(f"transfer task must be 'single' or 'multi', got {self.task!r}")


LINEAR_PROBE = TransferRecipe()
FINE_TUNE = TransferRecipe(mode="finetune", epochs=20, batch_size=64, lr=1e-4, weight_decay=1e-2, warmup_epochs=1)

TRANSFER_RECIPES: dict[str, TransferRecipe] = {"linear-probe": LINEAR_PROBE, "fine-tune": FINE_TUNE}
