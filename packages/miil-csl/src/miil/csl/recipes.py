"""Recipes of the CSL paper's experiments, as frozen dataclasses named after the table rows they reproduce.

Paper: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss" (arXiv 2110.10955).
The shared settings are the reference ``train.py``: TResNet-M (ImageNet-21K pretrained) at 448, Adam lr 2e-4 with
weight decay 1e-4 (not on biases and norms), one-cycle schedule (pct_start 0.2), EMA 0.9997 (keep-best of EMA and
raw), AMP, batch 64, 30 epochs, squish resize + CutoutPIL(0.5) + RandAugment. Loss settings of the CSL rows are the
README's runs (FPC: gamma_neg 3, gamma_unann 4, prior threshold 0.5; RPS: gamma_neg 1, gamma_unann 4), the others
follow the table headers ("CE": no focusing; "ASL": ASL's standard gamma_neg 4, clip 0.05, an assumption since the
paper's exact values for that column are not in the released code). The OpenImages rows use the reference's
bottleneck head (512) and 224 input as in ASL/ML-Decoder's OpenImages models; their loss settings are the
``train.py`` defaults (not published separately). LVIS follows the authors' answer in CSL issue #3.

The ``mosaic-*`` recipes are this package's demo settings on the embedded digit mosaics (CPU, seconds). Names are
kebab-case table rows: ``coco-rps0-5-csl`` is COCO with RPS(0.5) and CSL.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from miil.core.train import TrainConfig

from .modes import TOPK_SCOPES, resolve_partial_loss_mode

__all__ = ["DATA_FORMATS", "DEFAULT_RECIPE", "RECIPES", "CSLConfig", "describe_recipe", "get_recipe", "recipe_name"]

DATA_FORMATS = ("coco", "openimages", "lvis", "csv", "mosaic")
DEFAULT_RECIPE = "coco-fpc1000-csl"


@dataclass(frozen=True)
class CSLConfig(TrainConfig):
    """A CSL training run: the engine's settings plus model, data, simulation and partial-label loss."""

    out_dir: str = field(default="runs/csl", metadata={"help": "run directory (checkpoints, metrics, prior)"})
    epochs: int = field(default=30, metadata={"help": "number of epochs"})
    opt: str = field(default="adam", metadata={"help": "any timm optimizer name"})
    lr: float = field(default=2e-4, metadata={"help": "peak learning rate"})
    sched: str = field(default="onecycle", metadata={"help": "timm scheduler name, 'onecycle' or 'none'"})
    pct_start: float = field(default=0.2, metadata={"help": "one-cycle: fraction of steps warming up"})
    ema: bool = field(default=True, metadata={"help": "keep an EMA of the weights"})
    ema_decay: float = field(default=0.9997, metadata={"help": "EMA decay per update"})
    amp: bool = field(default=True, metadata={"help": "mixed precision (bf16 on CPU, fp16 on CUDA)"})
    eval_metric: str | None = field(default="mAP", metadata={"help": "metric for keep-best"})

    model: str = field(default="tresnet_m.miil_in21k", metadata={"help": "timm backbone name, or 'mosaic_cnn'"})
    pretrained: bool = field(default=True, metadata={"help": "start from timm's pretrained backbone (downloads)"})
    init_checkpoint: str | None = field(default=None, metadata={"help": "local backbone weights (strict)"})
    model_kwargs: str = field(
        default="{}", metadata={"help": "extra backbone arguments as a JSON object, e.g. '{\"width\": 8}'"}
    )
    in_chans: int = field(default=3, metadata={"help": "input channels (1 for the digit mosaics)"})
    img_size: int = field(default=448, metadata={"help": "square input size (squish resize)"})
    bottleneck_features: int | None = field(default=None, metadata={"help": "bottleneck head width (None: linear)"})
    cutout: float | None = field(default=0.5, metadata={"help": "CutoutPIL size factor (None: off)"})
    randaug: str | None = field(default="rand-m9-mstd0.5", metadata={"help": "timm RandAugment config (None: off)"})

    data_format: str = field(default="coco", metadata={"help": "coco | openimages | lvis | csv | mosaic"})
    simulate: str = field(default="none", metadata={"help": "partial-label simulation on train: none | fpc | rps"})
    simulate_param: float = field(default=0.0, metadata={"help": "FPC: labels kept per class; RPS: removal prob."})
    simulate_seed: int = field(default=0, metadata={"help": "seed of the simulation"})

    mode: str = field(
        default="selective",
        metadata={"help": "negative | ignore | ignore_normalize_classes | selective; none: the original's None"},
    )
    gamma_pos: float = field(default=0.0, metadata={"help": "focusing of positives"})
    gamma_neg: float = field(default=1.0, metadata={"help": "focusing of annotated negatives"})
    gamma_unann: float = field(default=2.0, metadata={"help": "focusing of un-annotated labels"})
    alpha_pos: float = field(default=1.0, metadata={"help": "weight of positives"})
    alpha_neg: float = field(default=1.0, metadata={"help": "weight of annotated negatives"})
    alpha_unann: float = field(default=1.0, metadata={"help": "weight of un-annotated labels"})
    clip: float = field(default=0.0, metadata={"help": "probability margin of negatives"})
    likelihood_topk: int = field(default=5, metadata={"help": "selective: ignored most-likely unknowns per sample"})
    topk_scope: str = field(default="batch", metadata={"help": "batch (reference) | sample"})
    prior_path: str | None = field(default=None, metadata={"help": "class prior CSV; estimated first when None"})
    prior_threshold: float = field(default=0.05, metadata={"help": "ignore unknowns of classes with prior above"})
    prior_epochs: int | None = field(default=None, metadata={"help": "epochs of the temporary ignore model"})
    prf_threshold: float = field(default=0.8, metadata={"help": "probability threshold of CP/CR/CF1/OP/OR/OF1"})

    def __post_init__(self) -> None:
        if self.data_format not in DATA_FORMATS:
            raise ValueError(f"data_format must be one of {DATA_FORMATS}, got {self.data_format!r}")
        if self.simulate not in ("none", "fpc", "rps"):
            raise ValueError(f"simulate must be none, fpc or rps, got {self.simulate!r}")
        resolve_partial_loss_mode(self.mode)  # raises on an unknown name; None / "none" is the original's None
        if self.topk_scope not in TOPK_SCOPES:
            raise ValueError(f"topk_scope must be batch or sample, got {self.topk_scope!r}")


_CE = dict(gamma_pos=0.0, gamma_neg=0.0, gamma_unann=0.0, clip=0.0)
_ASL = dict(gamma_pos=0.0, gamma_neg=4.0, gamma_unann=4.0, clip=0.05)
_COCO = dict(data_format="coco", model="tresnet_m.miil_in21k", img_size=448)
_FPC = dict(simulate="fpc", simulate_param=1000.0)
_RPS = dict(simulate="rps", simulate_param=0.5)
_OI = dict(data_format="openimages", img_size=224, bottleneck_features=512)
_MOSAIC = dict(
    data_format="mosaic",
    model="mosaic_cnn",
    pretrained=False,
    model_kwargs='{"width": 16}',
    in_chans=1,
    img_size=24,
    cutout=None,
    randaug=None,
    amp=False,
    epochs=8,
    batch_size=64,
    lr=3e-3,
    weight_decay=1e-4,
    ema_decay=0.99,
    likelihood_topk=1,
)
_FPC200 = dict(simulate="fpc", simulate_param=200.0)


def _r(**kw) -> CSLConfig:
    return CSLConfig(**kw)


RECIPES: dict[str, CSLConfig] = {
    # Table: COCO with FPC(1000) simulated partial labels (TResNet-M).
    "coco-fpc1000-ignore-ce": _r(**_COCO, **_FPC, mode="ignore", **_CE),
    "coco-fpc1000-negative-ce": _r(**_COCO, **_FPC, mode="negative", **_CE),
    "coco-fpc1000-negative-asl": _r(**_COCO, **_FPC, mode="negative", **_ASL),
    "coco-fpc1000-csl": _r(**_COCO, **_FPC, mode="selective", gamma_neg=3.0, gamma_unann=4.0, prior_threshold=0.5),
    # Table: COCO with RPS(0.5) simulated partial labels.
    "coco-rps0-5-ignore-ce": _r(**_COCO, **_RPS, mode="ignore", **_CE),
    "coco-rps0-5-negative-ce": _r(**_COCO, **_RPS, mode="negative", **_CE),
    "coco-rps0-5-negative-asl": _r(**_COCO, **_RPS, mode="negative", **_ASL),
    "coco-rps0-5-csl": _r(**_COCO, **_RPS, mode="selective", gamma_neg=1.0, gamma_unann=4.0),
    # Table: OpenImages V6 (9,605 classes, its own partial labels).
    "openimages-v6-tresnet-m-ignore": _r(**_OI, model="tresnet_m.miil_in21k", mode="ignore", **_CE),
    "openimages-v6-tresnet-m-negative": _r(**_OI, model="tresnet_m.miil_in21k", mode="negative", **_CE),
    "openimages-v6-tresnet-m-csl": _r(**_OI, model="tresnet_m.miil_in21k", mode="selective"),
    "openimages-v6-tresnet-l-csl": _r(**_OI, model="tresnet_l", mode="selective"),
    # LVIS (federated labels), settings from the authors' answer in CSL issue #3.
    "lvis-csl": _r(
        data_format="lvis",
        mode="selective",
        lr=6e-4,
        weight_decay=3e-4,
        gamma_pos=0.0,
        gamma_neg=0.0,
        gamma_unann=1.0,
    ),
    # Demo settings on the embedded digit mosaics (see miil.csl.demo): the COCO rows' loss settings, scaled to 10
    # classes (likelihood top-1 instead of top-5 of 80 classes).
    "mosaic-rps0-5-ignore-ce": _r(**_MOSAIC, **_RPS, mode="ignore", **_CE),
    "mosaic-rps0-5-negative-ce": _r(**_MOSAIC, **_RPS, mode="negative", **_CE),
    "mosaic-rps0-5-negative-pasl": _r(**_MOSAIC, **_RPS, mode="negative", gamma_neg=1.0, gamma_unann=4.0),
    "mosaic-rps0-5-csl": _r(**_MOSAIC, **_RPS, mode="selective", gamma_neg=1.0, gamma_unann=4.0, prior_threshold=0.05),
    "mosaic-fpc200-ignore-ce": _r(**_MOSAIC, **_FPC200, mode="ignore", **_CE),
    "mosaic-fpc200-negative-ce": _r(**_MOSAIC, **_FPC200, mode="negative", **_CE),
    "mosaic-fpc200-negative-pasl": _r(**_MOSAIC, **_FPC200, mode="negative", gamma_neg=3.0, gamma_unann=4.0),
    "mosaic-fpc200-csl": _r(
        **_MOSAIC, **_FPC200, mode="selective", gamma_neg=3.0, gamma_unann=4.0, prior_threshold=0.5
    ),
}


def describe_recipe(recipe: CSLConfig) -> str:
    """One line about a recipe for ``miil csl recipes``: data, simulated partial labels, mode and model."""
    simulation = {"fpc": f"FPC({recipe.simulate_param:g})", "rps": f"RPS({recipe.simulate_param:g})"}
    partial = simulation.get(
        recipe.simulate, "own partial labels" if recipe.data_format in ("openimages", "lvis") else "-"
    )
    return f"{recipe.data_format}, {partial}, mode {recipe.mode}, {recipe.model} at {recipe.img_size}"


def recipe_name(name: str) -> str:
    """The kebab-case name of a recipe; earlier spellings (``coco_rps0.5_csl``) map to it (``coco-rps0-5-csl``)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") if name not in RECIPES else name


def get_recipe(name: str, **overrides) -> CSLConfig:
    """A recipe by table-row name (earlier snake-case spellings are accepted), with field overrides."""
    from miil.core.config import pick_recipe

    return dataclasses.replace(pick_recipe(RECIPES, recipe_name(name)), **overrides)
