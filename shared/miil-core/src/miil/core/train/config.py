"""The run configuration every recipe subclasses; kept free of torch so that parsers build without importing it."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything the engine needs to know about a run. Paper recipes subclass it (frozen) and add fields."""

    out_dir: str = field(default="runs/train", metadata={"help": "run directory (checkpoints, metrics, config)"})
    epochs: int = field(default=10, metadata={"help": "number of epochs"})
    batch_size: int = field(default=64, metadata={"help": "batch size per process"})
    eval_batch_size: int | None = field(default=None, metadata={"help": "validation batch size (default: 2x)"})
    num_workers: int = field(default=0, metadata={"help": "data-loader worker processes"})
    opt: str = field(default="adamw", metadata={"help": "any timm optimizer name"})
    lr: float = field(default=1e-3, metadata={"help": "peak learning rate"})
    weight_decay: float = field(default=1e-4, metadata={"help": "weight decay (not on biases and norms)"})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum"})
    opt_betas: tuple[float, float] | None = field(default=None, metadata={"help": "Adam betas"})
    opt_eps: float | None = field(default=None, metadata={"help": "optimizer epsilon"})
    sched: str = field(default="cosine", metadata={"help": "timm scheduler name, 'onecycle' or 'none'"})
    sched_on_updates: bool = field(default=True, metadata={"help": "step the schedule per update, not per epoch"})
    warmup_epochs: int = field(default=0, metadata={"help": "linear warm-up epochs"})
    warmup_lr: float = field(default=1e-6, metadata={"help": "learning rate at the start of warm-up"})
    min_lr: float = field(default=0.0, metadata={"help": "floor of the schedule"})
    cooldown_epochs: int = field(default=0, metadata={"help": "epochs at min_lr after the schedule"})
    decay_epochs: float = field(default=90.0, metadata={"help": "step schedules: epochs between lr decays"})
    decay_rate: float = field(default=0.1, metadata={"help": "step schedules: lr factor at each decay"})
    pct_start: float = field(default=0.3, metadata={"help": "one-cycle: fraction of steps warming up"})
    div_factor: float = field(default=25.0, metadata={"help": "one-cycle: initial lr = lr / div_factor"})
    cycle_momentum: bool = field(default=True, metadata={"help": "one-cycle: cycle momentum / Adam beta1"})
    amp: bool = field(default=False, metadata={"help": "mixed precision on CUDA (fp16; on CPU only with --amp-dtype)"})
    amp_dtype: str = field(default="auto", metadata={"help": "auto (CUDA: float16, CPU: AMP off) | bfloat16 | float16"})
    clip_grad: float | None = field(default=None, metadata={"help": "gradient clipping value (off if None)"})
    clip_mode: str = field(default="norm", metadata={"help": "norm | value | agc"})
    ema: bool = field(default=False, metadata={"help": "keep an EMA of the weights (timm ModelEmaV3)"})
    ema_decay: float = field(default=0.9998, metadata={"help": "EMA decay per update"})
    ema_warmup: bool = field(default=False, metadata={"help": "EMA decay warm-up"})
    eval_metric: str | None = field(default=None, metadata={"help": "metric for keep-best (default: first)"})
    eval_mode: str = field(default="max", metadata={"help": "max | min: direction of the keep-best metric"})
    eval_tiebreak: str | None = field(
        default=None,
        metadata={"help": "metric[:min|max] that breaks ties of eval_metric (saturated metrics); default loss:min"},
    )
    seed: int = field(default=0, metadata={"help": "random seed"})
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda | cuda:N"})
    resume: bool = field(default=False, metadata={"help": "continue the run found in out_dir"})
    progress: bool = field(default=True, metadata={"help": "show tqdm progress bars"})
    log_interval: int = field(default=20, metadata={"help": "updates between progress-bar loss refreshes"})
    drop_last: bool = field(default=True, metadata={"help": "drop the last incomplete training batch"})
    max_steps_per_epoch: int | None = field(default=None, metadata={"help": "cap updates per epoch (quick runs)"})
    sync_bn: bool = field(default=False, metadata={"help": "DDP: synchronised BatchNorm statistics across ranks"})
    find_unused_parameters: bool = field(
        default=False, metadata={"help": "DDP: allow parameters without a gradient in an update (routed models)"}
    )
