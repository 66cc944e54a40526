"""Recipes of "ImageNet-21K Pretraining for the Masses" (arXiv 2104.10972), named after the rows they reproduce.

Semantic-softmax pretraining (the model-zoo table of the paper / ``MODEL_ZOO.md``; ``train_semantic_softmax.py``):
``torch.optim.Adam`` lr 3e-4 with weight decay 1e-4 on everything but biases and norms, coupled (L2 in the gradient,
not AdamW), one-cycle lr stepped per update (``pct_start=0.1``, ``div_factor=20``, momentum not cycled: the core
schedule's ``div_factor`` / ``cycle_momentum``), 80 epochs,
64 images per GPU, AMP, squish 224, CutoutPIL 0.5 + RandAugment, inputs in [0, 1], no EMA, no mixup, weights
initialised from ImageNet-1K with mismatched tensors (the head) skipped, label smoothing 0.2. RandAugment is timm's
``rand-m9-n2-mstd101-inc1`` (:data:`RANDAUG_IN21K`): the original's UDA RandAugment (2 ops, p 0.5,
magnitude up to 9, posterize keeping 4..1 bits, never 0); see :mod:`miil.in21k.data`. Rows:

==========================================  ===========================  ==================================
recipe                                      paper row                    paper: semantic top-1 / 1K top-1
==========================================  ===========================  ==================================
``semantic-softmax-mobilenetv3-large-100``  MobileNetV3-L                73.1 / 78.0
``semantic-softmax-resnet50``               ResNet50                     75.6 / 82.0
``semantic-softmax-tresnet-m``              TResNet-M                    76.4 / 83.1
``semantic-softmax-tresnet-l-v2``           TResNet-L-V2                 76.7 / 83.9
``semantic-softmax-mixer-b16-224``          Mixer-B-16                   76.3 / 82.3
``semantic-softmax-vit-base-patch16-224``   ViT-B-16                     77.6 / 84.4
``single-label-tresnet-m``                  single-label baseline        (the paper's comparison)
``semantic-kd-tresnet-m``                   semantic softmax + KD        (the zoo numbers include KD)
``single-label-from-scratch-tresnet-m``     random init, 140 epochs      ``train_single_label_from_scratch``
``transfer-cifar100-mixer-b16-miil-in21k``  Transfer_learning.md, Adam   91.1 (CIFAR-100 top-1)
==========================================  ===========================  ==================================

The transfer row's AutoAugment v0 asks for a 0-bit posterize in one sub-policy (a black image on 2021's Pillow, an
error on ours); that draw keeps 1 bit (:func:`miil.core.data.floor_posterize_bits`).

The released zoo numbers were trained with KD (the authors' issue #35); the teacher was never named (#61), so
``semantic-kd-tresnet-m`` uses TResNet-L-V2 21K, one of the two teachers the authors suggested (#35). The KD weight
(added to the semantic softmax loss) is our choice: the KD training code was never released.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from miil.core.train import TrainConfig

__all__ = ["RANDAUG_IN21K", "RECIPES", "In21kRecipe", "SemanticPretrainRecipe", "TransferRecipe"]

#: timm RandAugment of the pretraining recipes: the original's UDA RandAugment strength (see :mod:`miil.in21k.data`).
RANDAUG_IN21K = "rand-m9-n2-mstd101-inc1"


@dataclass(frozen=True)
class In21kRecipe(TrainConfig):
    """Fields shared by the 21K pretraining and the transfer recipes."""

    model: str = field(default="tresnet_m.miil_in1k", metadata={"help": "timm model name (with tag: its weights)"})
    pretrained: bool = field(default=True, metadata={"help": "start from timm's weights of --model (hub download)"})
    init_checkpoint: str | None = field(
        default=None, metadata={"help": "local weights to start from; tensors of other shapes (the head) skipped"}
    )
    img_size: int = field(default=224, metadata={"help": "square input size (squish resize)"})
    mean: tuple[float, float, float] | None = field(
        default=None, metadata={"help": "input normalisation mean (default: the model's timm config)"}
    )
    std: tuple[float, float, float] | None = field(
        default=None, metadata={"help": "input normalisation std (default: the model's timm config)"}
    )
    label_smoothing: float = field(default=0.2, metadata={"help": "label smoothing"})


@dataclass(frozen=True)
class SemanticPretrainRecipe(In21kRecipe):
    """ImageNet-21K-P pretraining with the semantic softmax (or the single-label baseline), optionally with KD."""

    tree: str = field(default="fall11", metadata={"help": "fall11 | winter21 | a tree file (.pth / .json.gz)"})
    loss: str = field(default="semantic_softmax", metadata={"help": "semantic_softmax | single_label"})
    include_deepest: bool = field(default=False, metadata={"help": "also train the deepest level (original: no)"})
    max_level_weight: float = field(default=20.0, metadata={"help": "clamp of the level weights"})
    cutout: float = field(default=0.5, metadata={"help": "CutoutPIL size factor (0: off)"})
    randaug: str = field(default=RANDAUG_IN21K, metadata={"help": "timm RandAugment config ('' : off)"})
    teacher: str | None = field(default=None, metadata={"help": "timm name of a semantic-KD teacher (same tree)"})
    teacher_pretrained: bool = field(default=True, metadata={"help": "teacher weights from timm (hub download)"})
    teacher_checkpoint: str | None = field(default=None, metadata={"help": "local teacher weights instead"})
    kd_weight: float = field(default=1.0, metadata={"help": "weight of the semantic KD term"})
    kd_reduction: str = field(default="sum", metadata={"help": "sum (original) | batchmean"})
    kd_distance: str = field(default="mse", metadata={"help": "mse (original) | kl"})


@dataclass(frozen=True)
class TransferRecipe(In21kRecipe):
    """Downstream single-label fine-tuning of a 21K-pretrained model on an image folder."""

    hflip: float = field(default=0.5, metadata={"help": "horizontal flip probability"})
    auto_augment: str | None = field(default="v0", metadata={"help": "timm AutoAugment policy ('' : off)"})
    reprob: float = field(default=0.5, metadata={"help": "random-erasing probability"})


_PRETRAIN = SemanticPretrainRecipe(
    out_dir="runs/in21k",
    epochs=80,
    batch_size=64,
    num_workers=8,
    opt="adam",
    lr=3e-4,
    weight_decay=1e-4,
    sched="onecycle",
    pct_start=0.1,
    div_factor=20.0,
    cycle_momentum=False,
    amp=True,
    eval_metric="semantic_top1",
)

RECIPES: dict[str, In21kRecipe] = {
    "semantic-softmax-mobilenetv3-large-100": replace(_PRETRAIN, model="mobilenetv3_large_100.ra_in1k"),
    "semantic-softmax-resnet50": replace(_PRETRAIN, model="resnet50.a1_in1k"),
    "semantic-softmax-tresnet-m": replace(_PRETRAIN, model="tresnet_m.miil_in1k"),
    "semantic-softmax-tresnet-l-v2": replace(_PRETRAIN, model="tresnet_v2_l.miil_in21k_ft_in1k"),
    "semantic-softmax-mixer-b16-224": replace(_PRETRAIN, model="mixer_b16_224.miil_in21k_ft_in1k"),
    "semantic-softmax-vit-base-patch16-224": replace(_PRETRAIN, model="vit_base_patch16_224_miil.in21k_ft_in1k"),
    "single-label-tresnet-m": replace(_PRETRAIN, model="tresnet_m.miil_in1k", loss="single_label", eval_metric="top1"),
    "semantic-kd-tresnet-m": replace(_PRETRAIN, model="tresnet_m.miil_in1k", teacher="tresnet_v2_l.miil_in21k"),
    "single-label-from-scratch-tresnet-m": replace(
        _PRETRAIN,
        model="tresnet_m",
        pretrained=False,
        loss="single_label",
        opt="sgd",
        lr=1e-2,
        momentum=0.0,  # the original script never sets momentum
        epochs=140,
        eval_metric="top1",
    ),
    "transfer-cifar100-mixer-b16-miil-in21k": TransferRecipe(
        out_dir="runs/in21k-transfer",
        model="mixer_b16_224.miil_in21k",
        epochs=50,
        batch_size=128,
        num_workers=8,
        opt="adam",
        lr=2e-4,
        weight_decay=1e-4,
        sched="cosine",
        warmup_epochs=3,
        min_lr=1e-8,
        ema=True,
        ema_decay=0.995,
        amp=True,
        label_smoothing=0.1,
        eval_metric="top1",
    ),
}
