"""PETA recipes, one frozen dataclass per setting of the paper (arXiv 2109.12499, section 4).

What the paper and its code fix: TResNet-M pretrained on ImageNet-21K (timm ``tresnet_m.miil_in21k``), 224 px
squish-resized photos in [0, 1], K = 32 photos per album, a 6-layer / 8-head post-norm transformer of width 2048
with feed-forward 2048 and dropout 0.1, ASL with gamma- = 4, gamma+ = 0.05, clip 0.05 (the repository's defaults).
The training schedule (optimizer, learning rate, epochs, batch) was never published (PETA issue #14), so those
fields are our choice for fine-tuning a pretrained backbone: AdamW, lr 1e-4, cosine with 2 warm-up epochs, 40 epochs,
EMA, AMP (on GPUs; the engine keeps the CPU in fp32). Position embedding: the released ``peta_32`` model uses it
(``PETA_32_RELEASE``); the training recipes leave it off, since albums are unordered.

Keep-best: mAP first, top-1 to break ties. A small validation set saturates mAP at 100 as soon as every event ranks
its own albums first, also for weights that predict one event for every album (top-1 33.3 on three events); the
tie-break keeps the weights that name each album's event.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from miil.core.train import TrainConfig

__all__ = [
    "MEAN_ML_CUFED",
    "PETA_32_RELEASE",
    "PETA_CUFED",
    "PETA_ML_CUFED",
    "PETA_PEC",
    "RECIPES",
    "PETARecipe",
]


@dataclass(frozen=True)
class PETARecipe(TrainConfig):
    """A PETA training / evaluation setting (engine fields plus the model and data fields)."""

    model: str = field(default="tresnet_m.miil_in21k", metadata={"help": "timm backbone per photo"})
    pretrained: bool = field(default=True, metadata={"help": "load timm's pretrained backbone (downloads)"})
    init_checkpoint: str | None = field(default=None, metadata={"help": "local backbone weights (loaded strictly)"})
    aggregator: str = field(default="transformer", metadata={"help": "transformer (PETA) | mean (baseline)"})
    depth: int = field(default=6, metadata={"help": "transformer layers"})
    num_heads: int = field(default=8, metadata={"help": "attention heads"})
    ffn_dim: int = field(default=2048, metadata={"help": "transformer feed-forward width"})
    transformer_dropout: float = field(default=0.1, metadata={"help": "dropout inside the transformer"})
    activation: str = field(default="relu", metadata={"help": "relu | gelu"})
    norm_first: bool = field(default=False, metadata={"help": "pre-norm layers (the original is post-norm)"})
    pos_embed: bool = field(default=False, metadata={"help": "position embedding over the photo order"})
    mean_score: str = field(default="softmax", metadata={"help": "baseline: softmax | sigmoid | logits averaged"})
    num_classes: int = field(default=23, metadata={"help": "number of events"})
    album_size: int = field(default=32, metadata={"help": "K, photos per album"})
    img_size: int = field(default=224, metadata={"help": "photo side (squish resize)"})
    pad: str = field(default="mask", metadata={"help": "short albums: mask | duplicate (original)"})
    augment: str = field(default="flip", metadata={"help": "training augmentation: none | flip | randaugment"})
    gamma_neg: float = field(default=4.0, metadata={"help": "ASL gamma for negatives"})
    gamma_pos: float = field(default=0.05, metadata={"help": "ASL gamma for positives"})
    clip: float = field(default=0.05, metadata={"help": "ASL probability margin"})
    epochs: int = field(default=40, metadata={"help": "number of epochs"})
    batch_size: int = field(default=8, metadata={"help": "albums per process and step"})
    opt: str = field(default="adamw", metadata={"help": "any timm optimizer name"})
    lr: float = field(default=1e-4, metadata={"help": "peak learning rate"})
    weight_decay: float = field(default=1e-4, metadata={"help": "weight decay (not on biases and norms)"})
    warmup_epochs: int = field(default=2, metadata={"help": "linear warm-up epochs"})
    amp: bool = field(default=True, metadata={"help": "mixed precision on CUDA (fp16; on CPU only with --amp-dtype)"})
    ema: bool = field(default=True, metadata={"help": "keep an EMA of the weights"})
    ema_decay: float = field(default=0.999, metadata={"help": "EMA decay per update"})
    eval_metric: str | None = field(default="mAP", metadata={"help": "metric for keep-best"})
    eval_tiebreak: str | None = field(
        default="top1:max", metadata={"help": "metric[:min|max] that breaks ties of eval_metric (mAP saturates)"}
    )


PETA_ML_CUFED = PETARecipe(out_dir="runs/peta-ml-cufed")
PETA_CUFED = PETARecipe(out_dir="runs/peta-cufed")
PETA_PEC = PETARecipe(out_dir="runs/peta-pec", num_classes=14)
MEAN_ML_CUFED = replace(PETA_ML_CUFED, out_dir="runs/mean-ml-cufed", aggregator="mean")
# The released ML-CUFED checkpoint (peta_32.pth): trained with the position embedding on; for validate / infer.
PETA_32_RELEASE = replace(PETA_ML_CUFED, out_dir="runs/peta-32", model="tresnet_m", pretrained=False, pos_embed=True)

RECIPES: dict[str, PETARecipe] = {
    "peta-ml-cufed": PETA_ML_CUFED,
    "peta-cufed": PETA_CUFED,
    "peta-pec": PETA_PEC,
    "mean-ml-cufed": MEAN_ML_CUFED,
    "peta-32-release": PETA_32_RELEASE,
}
