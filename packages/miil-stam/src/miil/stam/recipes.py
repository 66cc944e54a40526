"""STAM recipes, one frozen dataclass per row of the paper's Kinetics-400 table.

Paper: STAM (arXiv 2103.13915), Table 1 (Kinetics-400 top-1 at 224 px, one view): STAM-8 77.5, STAM-16 79.3,
STAM-32 79.95, STAM-64 80.5. What is known of the setting: ViT-B/16 on every frame (ImageNet-21K pretrained),
a 6-layer temporal transformer (8 heads, FFN 2048, dropout 0.1, ReLU, post-norm), ``T`` frames at ``T / 10`` fps
from the start of the video, resize 256 + centre crop 224, no mean/std normalisation, and knowledge distillation
in the improved (v2) results. The training code and hyper-parameters were never published (STAM issues #4, #16):
the optimiser, schedule, epochs, batch size, crops and KD weights below are our choices, not the paper's.

Each recipe is data: the CLI exposes every field as ``--field-name`` and writes the resolved recipe into the run.
Recipe names are the table's rows in kebab-case (``stam-16``); fields that are argument roles of the ``miil`` dialect
use its spelling (``model``, ``model_kwargs``, ``pretrained``, ``init_checkpoint``, ``teacher_checkpoint``,
``kd_weight``). The class count is read from the data (``num_classes=0``; 400 on Kinetics-400).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from miil.core.train import TrainConfig

__all__ = ["DATA_FORMATS", "RECIPES", "STAM8", "STAM16", "STAM32", "STAM64", "STAMRecipe"]

#: On-disk formats the CLI reads (``--data-format``); :func:`miil.stam.pipeline.data_source` describes each.
DATA_FORMATS = ("kinetics", "ucf101", "csv", "folder")


@dataclass(frozen=True)
class STAMRecipe(TrainConfig):
    """The engine's fields plus the model, clip sampling, frame transform and distillation of a STAM run."""

    # model
    model: str = field(default="vit_base_patch16_224", metadata={"help": "timm model applied to every frame"})
    model_kwargs: str = field(
        default="{}", metadata={"help": "extra timm.create_model arguments of the frame model, as a JSON object"}
    )
    pretrained: bool = field(default=False, metadata={"help": "timm's pretrained frame-model weights (downloads)"})
    init_checkpoint: str | None = field(
        default=None,
        metadata={"help": "local weights to start from: the frame model's (timm layout), or a whole STAM's"},
    )
    spatial_norm_eps: float | None = field(default=1e-5, metadata={"help": "LayerNorm eps of the spatial model"})
    num_classes: int = field(default=0, metadata={"help": "number of classes (0: from the data)"})
    num_frames: int = field(default=16, metadata={"help": "frames per clip T"})
    aggregation: str = field(default="transformer", metadata={"help": "transformer (STAM) | mean (frame averaging)"})
    temporal_depth: int = field(default=6, metadata={"help": "temporal transformer layers"})
    temporal_heads: int = field(default=8, metadata={"help": "temporal attention heads"})
    temporal_mlp_dim: int = field(default=2048, metadata={"help": "temporal feed-forward width"})
    temporal_dropout: float = field(default=0.1, metadata={"help": "dropout in the temporal layers"})
    temporal_activation: str = field(default="relu", metadata={"help": "relu | gelu"})
    norm_first: bool = field(default=False, metadata={"help": "pre-norm temporal layers (original: post-norm)"})
    temporal_pos_std: float = field(default=0.02, metadata={"help": "init std of the temporal position embedding"})
    grad_checkpointing: bool = field(default=False, metadata={"help": "recompute spatial activations (memory)"})
    # clips
    sampling: str = field(default="fixed_fps", metadata={"help": "evaluation sampling: fixed_fps | segment | uniform"})
    train_sampling: str = field(default="fixed_fps", metadata={"help": "training sampling (random start/offsets)"})
    frame_rate: float = field(default=1.6, metadata={"help": "fixed_fps rate in frames/s (T / 10: first 10 s)"})
    short_video: str = field(default="pad", metadata={"help": "fixed_fps past the end: pad (last frame) | loop"})
    eval_views: int = field(default=1, metadata={"help": "temporal views per video at evaluation"})
    spatial_views: int = field(default=1, metadata={"help": "spatial crops per view at evaluation (1 | 3)"})
    # frames
    img_size: int = field(default=224, metadata={"help": "input resolution"})
    eval_crop: str = field(default="center", metadata={"help": "center (resize int(size/zoom), crop) | squish"})
    crop_zoom: float = field(default=0.875, metadata={"help": "centre crop: kept fraction of the resized side"})
    train_crop: str = field(default="random_resized", metadata={"help": "random_resized | center | squish"})
    train_scale: tuple[float, float] = field(default=(0.25, 1.0), metadata={"help": "random_resized area range"})
    hflip: float = field(default=0.5, metadata={"help": "horizontal flip probability of a training clip"})
    normalize: str = field(default="none", metadata={"help": "none (original weights) | imagenet | inception"})
    backend: str = field(default="auto", metadata={"help": "auto (decord, PyAV fallback) | decord | pyav"})
    decode_threads: int = field(default=1, metadata={"help": "decoder threads per video"})
    # distillation
    teacher_checkpoint: str | None = field(
        default=None, metadata={"help": "the teacher STAM: a run folder or a converted checkpoint"}
    )
    kd_weight: float = field(default=0.0, metadata={"help": "weight of the KD term in [0, 1] (0: plain CE)"})
    kd_temperature: float = field(default=1.0, metadata={"help": "KD softmax temperature"})
    label_smoothing: float = field(default=0.0, metadata={"help": "label smoothing of the cross-entropy"})


@dataclass(frozen=True)
class STAM16(STAMRecipe):
    """Kinetics-400, STAM-16: 16 frames at 1.6 fps, 79.3% top-1 (paper v2; 77.8% in v1), 270 GFLOPs, 1 view.

    Training setting (our choice; the paper's is unpublished): AdamW, lr 1e-4 with 2 warm-up epochs and cosine decay,
    weight decay 0.05, 30 epochs, batch 8 per process, mixed precision, random-resized crops and flips.
    """

    epochs: int = 30
    batch_size: int = 8
    opt: str = "adamw"
    lr: float = 1e-4
    weight_decay: float = 0.05
    sched: str = "cosine"
    warmup_epochs: int = 2
    amp: bool = True
    clip_grad: float | None = 1.0
    eval_metric: str | None = "top1"


@dataclass(frozen=True)
class STAM8(STAM16):
    """Kinetics-400, STAM-8: 8 frames at 0.8 fps, 77.5% top-1 (paper), 135 GFLOPs."""

    num_frames: int = 8
    frame_rate: float = 0.8


@dataclass(frozen=True)
class STAM32(STAM16):
    """Kinetics-400, STAM-32: 32 frames at 3.2 fps, 79.95% top-1 (paper), 540 GFLOPs."""

    num_frames: int = 32
    frame_rate: float = 3.2
    batch_size: int = 4


@dataclass(frozen=True)
class STAM64(STAM16):
    """Kinetics-400, STAM-64: 64 frames at 6.4 fps, 80.5% top-1 (paper v2; 79.2% in v1), 1080 GFLOPs."""

    num_frames: int = 64
    frame_rate: float = 6.4
    batch_size: int = 2
    grad_checkpointing: bool = True


RECIPES: dict[str, STAMRecipe] = {
    "stam-8": STAM8(),
    "stam-16": STAM16(),
    "stam-32": STAM32(),
    "stam-64": STAM64(),
}
