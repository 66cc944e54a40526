"""Training recipes of the ML-Decoder paper, one frozen dataclass per table row.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933), experiments
and appendix, and the reference training scripts (``train.py``, ``train_zsl_nus.py``). The multi-label recipe: Adam
(weight decay 1e-4, none on biases and 1-D parameters), one-cycle schedule with 20% warm-up stepped per update, EMA
0.9997 with keep-best of EMA vs. raw weights by validation mAP, mixed precision, squish resize, CutoutPIL(0.5) and
RandAugment, no mean/std normalisation for TResNet, ASL (gamma_neg 4, gamma_pos 0, clip 0.05), 40 epochs.

Each recipe is data: the CLI exposes every field as ``--field-name`` and writes the resolved recipe into the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from miil.core.train import TrainConfig

__all__ = [
    "RECIPES",
    "CocoTResNetL448",
    "CocoTResNetM224",
    "ImageNetResNet50",
    "MLDecoderRecipe",
    "NusWideZslTResNetL224",
    "OpenImagesTResNetM224",
]

TASKS = ("multilabel", "singlelabel", "zsl")


@dataclass(frozen=True)
class MLDecoderRecipe(TrainConfig):
    """The engine's fields plus the model, data, augmentation and loss of an ML-Decoder run."""

    # model
    model: str = field(default="tresnet_l", metadata={"help": "timm backbone name"})
    model_kwargs: str = field(default="{}", metadata={"help": "extra timm.create_model arguments as a JSON object"})
    pretrained: bool = field(default=False, metadata={"help": "start from timm's pretrained backbone (downloads)"})
    init_checkpoint: str | None = field(default=None, metadata={"help": "local backbone weights (timm layout)"})
    task: str = field(default="multilabel", metadata={"help": "multilabel | singlelabel | zsl"})
    head: str = field(default="ml_decoder", metadata={"help": "ml_decoder | linear (GAP + fc baseline)"})
    num_classes: int = field(default=0, metadata={"help": "number of classes (0: from the data)"})
    num_groups: int = field(default=100, metadata={"help": "ML-Decoder query groups K (capped at the classes)"})
    embed_dim: int = field(default=768, metadata={"help": "decoder width"})
    num_heads: int = field(default=8, metadata={"help": "decoder attention heads"})
    ffn_dim: int = field(default=2048, metadata={"help": "decoder feed-forward width"})
    decoder_dropout: float = field(default=0.1, metadata={"help": "decoder dropout"})
    learnable_queries: bool = field(default=False, metadata={"help": "train the queries (the paper freezes them)"})
    drop_prefix_tokens: bool = field(default=True, metadata={"help": "drop ViT class/register tokens"})
    # data
    img_size: int = field(default=448, metadata={"help": "input resolution (squish resize)"})
    normalize: bool = field(default=True, metadata={"help": "mean/std normalisation from the timm model's config"})
    cutout: float = field(default=0.5, metadata={"help": "CutoutPIL size factor (0: off)"})
    randaug: str | None = field(default="rand-m9-mstd0.5", metadata={"help": "timm RandAugment config (none: off)"})
    # multi-label loss (ASL) and evaluation
    gamma_neg: float = field(default=4.0, metadata={"help": "ASL focusing of negatives"})
    gamma_pos: float = field(default=0.0, metadata={"help": "ASL focusing of positives"})
    clip: float = field(default=0.05, metadata={"help": "ASL probability margin of negatives"})
    prf_threshold: float = field(default=0.75, metadata={"help": "threshold of the precision/recall/F1 report"})
    # single-label
    single_label_loss: str = field(default="ce", metadata={"help": "ce | bce (single-label loss)"})
    label_smoothing: float = field(default=0.1, metadata={"help": "label smoothing (single-label)"})
    bce_target_threshold: float | None = field(default=None, metadata={"help": "BCE target threshold"})
    mixup: float = field(default=0.0, metadata={"help": "mixup alpha (single-label)"})
    cutmix: float = field(default=0.0, metadata={"help": "cutmix alpha (single-label)"})
    # zero-shot
    word_dim: int = field(default=300, metadata={"help": "word-vector width (zsl)"})
    query_noise: float = field(default=0.0, metadata={"help": "additive query noise, relative std (zsl)"})
    random_queries: int = field(default=0, metadata={"help": "random queries added per step (zsl)"})
    random_query_target: float = field(default=1.0, metadata={"help": "target of the random queries (zsl)"})


@dataclass(frozen=True)
class CocoTResNetL448(MLDecoderRecipe):
    """MS-COCO 2014, TResNet-L (the v2 variant ML-Decoder uses) at 448: 90.1 mAP in the reference MODEL_ZOO."""

    model: str = "tresnet_v2_l"
    img_size: int = 448
    normalize: bool = False
    num_classes: int = 80
    epochs: int = 40
    batch_size: int = 56
    opt: str = "adam"
    lr: float = 1e-4
    weight_decay: float = 1e-4
    sched: str = "onecycle"
    pct_start: float = 0.2
    ema: bool = True
    ema_decay: float = 0.9997
    amp: bool = True
    eval_metric: str | None = "mAP"


@dataclass(frozen=True)
class CocoTResNetM224(CocoTResNetL448):
    """MS-COCO 2014, TResNet-M at 224: 84.2 mAP in the reference MODEL_ZOO."""

    model: str = "tresnet_m"
    img_size: int = 224


@dataclass(frozen=True)
class OpenImagesTResNetM224(CocoTResNetL448):
    """OpenImages V6 (9,605 classes), TResNet-M at 224 with 200 query groups: 86.8 mAP (paper, MODEL_ZOO).

    The reference publishes no OpenImages training script; this row reuses the COCO training recipe with the
    paper's 200 groups (49 logits per group, 9,800 truncated to 9,605).
    """

    model: str = "tresnet_m"
    img_size: int = 224
    num_classes: int = 9605
    num_groups: int = 200


@dataclass(frozen=True)
class NusWideZslTResNetL224(CocoTResNetL448):
    """NUS-WIDE zero-shot (925 seen / 81 unseen labels), TResNet-L at 224: 31.1 ZSL mAP (paper, abstract).

    From ``train_zsl_nus.py``: one query per class from 300-d word vectors, weight decay 1e-2, otherwise the COCO
    recipe. Keep-best by ZSL mAP on the unseen classes.
    """

    task: str = "zsl"
    img_size: int = 224
    num_classes: int = 0
    weight_decay: float = 1e-2
    eval_metric: str | None = "ZSL_mAP"


@dataclass(frozen=True)
class ImageNetResNet50(MLDecoderRecipe):
    """ImageNet-1K single-label, ResNet50 at 224 with an ML-Decoder head: 80.7% top-1 (paper, abstract).

    The paper trains with timm's "A2" procedure of "ResNet strikes back" (arXiv 2110.00476): LAMB, 300 epochs,
    binary cross-entropy with target threshold 0.2, mixup 0.1 / cutmix 1.0, RandAugment m7. Repeated augmentation
    (3 repeats) is not reproduced here. ``--single-label-loss ce --label-smoothing 0.1`` gives the usual CE setting.
    """

    model: str = "resnet50"
    task: str = "singlelabel"
    num_classes: int = 1000
    img_size: int = 224
    epochs: int = 300
    batch_size: int = 256
    opt: str = "lamb"
    lr: float = 4e-3
    weight_decay: float = 0.02
    sched: str = "cosine"
    warmup_epochs: int = 5
    randaug: str | None = "rand-m7-mstd0.5-inc1"
    cutout: float = 0.0
    single_label_loss: str = "bce"
    label_smoothing: float = 0.0
    bce_target_threshold: float | None = 0.2
    mixup: float = 0.1
    cutmix: float = 1.0
    amp: bool = True
    eval_metric: str | None = "top1"


RECIPES: dict[str, MLDecoderRecipe] = {
    "coco-tresnet-l-448": CocoTResNetL448(),
    "coco-tresnet-m-224": CocoTResNetM224(),
    "openimages-tresnet-m-224": OpenImagesTResNetM224(),
    "nuswide-zsl-tresnet-l-224": NusWideZslTResNetL224(),
    "imagenet-resnet50-224": ImageNetResNet50(),
}
