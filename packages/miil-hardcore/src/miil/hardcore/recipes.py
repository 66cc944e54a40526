"""HardCoRe-NAS recipes as data, named after the paper's settings (arXiv 2102.11646, section 4 and appendix).

Training recipes subclass the core :class:`~miil.core.train.TrainConfig`; values come from the original code's
README commands (heaviest path, multipath one-shot, fine-tune) and its defaults. Search recipes are one per published
model: the latency targets of HardCoRe-NAS A ... F, measured on an Intel Xeon CPU with batch 1 (so they only mean
something with a table measured on a comparable CPU; measure your own with ``miil hardcore lut``).

The ``*-digits`` recipes are the small settings of the demo and the tests (real scikit-learn digits). Recipe names
are kebab-case (the ``miil`` dialect); the tables also answer the earlier snake_case spellings
(``SUPERNET_RECIPES["heaviest_path_digits"]``) for scripts written before the rename, without listing them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from miil.core.train import TrainConfig

__all__ = [
    "ALL_RECIPES",
    "CHILD_RECIPES",
    "SEARCH_RECIPES",
    "SUPERNET_RECIPES",
    "ChildRecipe",
    "SearchRecipe",
    "SupernetRecipe",
    "RecipeTable",
]


class RecipeTable(dict):
    """Recipe name -> recipe; a lookup with the pre-dialect snake_case spelling finds the kebab-case row.

    Iteration (``--recipe`` choices, the ``recipes`` verb) sees only the kebab-case names.
    """

    def __missing__(self, key):
        if isinstance(key, str) and "_" in key:
            kebab = key.replace("_", "-")
            if kebab in self:
                return self[kebab]
        raise KeyError(key)

    def __contains__(self, key) -> bool:
        return dict.__contains__(self, key) or (isinstance(key, str) and dict.__contains__(self, key.replace("_", "-")))


@dataclass(frozen=True)
class _ImageRecipe(TrainConfig):
    space: str = field(
        default="hardcorenas",
        metadata={"help": "'hardcorenas' (the paper's) or a space JSON file; an --arch search result's own wins"},
    )
    img_size: int = field(default=224, metadata={"help": "training / evaluation resolution"})
    drop_rate: float = field(default=0.0, metadata={"help": "dropout before the classifier"})
    drop_path_rate: float = field(default=0.0, metadata={"help": "stochastic depth"})
    label_smoothing: float = field(default=0.0, metadata={"help": "label smoothing of the cross-entropy"})
    randaug: str | None = field(default=None, metadata={"help": "timm RandAugment string, e.g. rand-m9-mstd0.5"})
    reprob: float = field(default=0.0, metadata={"help": "random-erasing probability"})
    decay_epochs: float = field(default=2.4, metadata={"help": "step schedule: epochs between decays"})
    decay_rate: float = field(default=0.97, metadata={"help": "step schedule: lr factor per decay"})
    kd_weight: float = field(default=0.0, metadata={"help": "weight of the distillation from the heaviest path"})
    kd_temperature: float = field(default=1.0, metadata={"help": "distillation temperature"})


@dataclass(frozen=True)
class SupernetRecipe(_ImageRecipe):
    """Supernet training: ``stage="heaviest"`` trains the heaviest path; ``"multipath"`` the one-shot model."""

    stage: str = field(default="heaviest", metadata={"help": "heaviest | multipath"})
    feature_kd_divisor: float = field(
        default=50.0, metadata={"help": "multipath: stage-feature MSE is divided by this (the original's 50)"}
    )
    taylor_fraction: float = field(
        default=0.1, metadata={"help": "multipath: fraction of the training set for Taylor channel ordering"}
    )


@dataclass(frozen=True)
class ChildRecipe(_ImageRecipe):
    """Training a chosen child: fine-tuning inherited weights (with KD) or training from scratch."""


@dataclass(frozen=True)
class SearchRecipe:
    """A constrained search (section 3.4).

    Args:
        latency_ms: The target ``T`` in ms per sample on the table's device.
        steps: Frank-Wolfe steps.
        batch_size: Images per gradient estimate.
        momentum: Gradient momentum.
        gamma: Frank-Wolfe step size (the paper: 0.002 over 10,000 steps).
        gamma_schedule: "auto" (the fixed gamma when gamma * steps >= 20, as in the paper; else the diminishing
            Frank-Wolfe step 4 / (k + 4)), "fixed" or "decay".
        tau: Gumbel-softmax temperature of the soft-penalty baseline (BCSFW's gradient does not depend on it).
        train_percent: Percent of the training set used to train the supernet; the rest drives the search.
        method: "hardcore" (BCSFW, hard constraint) or "soft_penalty" (the baseline).
        penalty: Soft-penalty weight (baseline only).
        lr: Soft-penalty Adam learning rate (baseline only).
        img_size: Resolution of the search images.
        seed: Random seed.
    """

    latency_ms: float = field(default=40.0, metadata={"help": "latency target T (ms per sample)"})
    steps: int = field(default=10_000, metadata={"help": "Frank-Wolfe steps"})
    batch_size: int = field(default=16, metadata={"help": "images per gradient estimate"})
    momentum: float = field(default=0.9, metadata={"help": "gradient momentum"})
    gamma: float = field(default=0.002, metadata={"help": "Frank-Wolfe step size"})
    gamma_schedule: str = field(
        default="auto", metadata={"help": "auto (fixed if gamma * steps >= 20, else 4 / (k + 4)) | fixed | decay"}
    )
    tau: float = field(default=1.0, metadata={"help": "Gumbel-softmax temperature (soft-penalty baseline)"})
    train_percent: float = field(default=80.0, metadata={"help": "percent of train used for weights; rest searches"})
    method: str = field(default="hardcore", metadata={"help": "hardcore | soft_penalty"})
    penalty: float = field(default=1.0, metadata={"help": "soft-penalty weight (baseline)"})
    lr: float = field(default=0.01, metadata={"help": "soft-penalty Adam lr (baseline)"})
    img_size: int = field(default=224, metadata={"help": "resolution of the search images"})
    seed: int = field(default=0, metadata={"help": "random seed"})


_HEAVIEST = dict(
    epochs=300,
    batch_size=256,
    opt="sgd",
    momentum=0.9,
    lr=0.128,
    sched="step",
    sched_on_updates=True,
    decay_epochs=2.4,
    decay_rate=0.97,
    warmup_epochs=3,
    warmup_lr=1e-6,
    weight_decay=1e-5,
    drop_rate=0.3,
    drop_path_rate=0.2,
    randaug="rand-m9-mstd0.5",
    reprob=0.2,
    label_smoothing=0.1,
    ema=True,
    ema_decay=0.9998,
)

SUPERNET_RECIPES: dict[str, SupernetRecipe] = RecipeTable(
    {
        # Train the heaviest network first (README: -b 256 --lr 0.128 --sched step 300 epochs, decay 0.97 / 2.4 ep).
        "heaviest-path-imagenet": SupernetRecipe(out_dir="runs/hardcore/heaviest", stage="heaviest", **_HEAVIEST),
        # Multipath one-shot training with KD from the heaviest path (README: -b 200 --lr 0.0128 cosine 100 epochs).
        "multipath-imagenet": SupernetRecipe(
            out_dir="runs/hardcore/multipath",
            stage="multipath",
            epochs=100,
            batch_size=200,
            opt="sgd",
            lr=0.0128,
            sched="cosine",
            warmup_epochs=3,
            warmup_lr=1e-4,
            weight_decay=1e-5,
            randaug="rand-m9-mstd0.5",
            reprob=0.2,
            label_smoothing=0.1,
            kd_weight=1.0,
            feature_kd_divisor=50.0,
            taylor_fraction=0.1,
        ),
        "heaviest-path-digits": SupernetRecipe(
            out_dir="runs/hardcore/digits-heaviest",
            stage="heaviest",
            space="digits",
            img_size=16,
            epochs=5,
            batch_size=128,
            opt="adamw",
            lr=5e-3,
            weight_decay=1e-4,
            sched="cosine",
            progress=False,
            device="cpu",
        ),
        "multipath-digits": SupernetRecipe(
            out_dir="runs/hardcore/digits-multipath",
            stage="multipath",
            space="digits",
            img_size=16,
            epochs=16,
            batch_size=128,
            opt="adamw",
            lr=3e-3,
            weight_decay=1e-4,
            sched="cosine",
            kd_weight=1.0,
            feature_kd_divisor=50.0,
            taylor_fraction=0.1,
            progress=False,
            device="cpu",
        ),
    }
)

CHILD_RECIPES: dict[str, ChildRecipe] = RecipeTable(
    {
        # Fine-tune the extracted child with KD (KL, T=1, weight 2) from the heaviest path (README: 50 epochs).
        "finetune-imagenet": ChildRecipe(
            out_dir="runs/hardcore/finetune",
            epochs=50,
            batch_size=128,
            opt="sgd",
            lr=0.00128,
            sched="cosine",
            warmup_epochs=0,
            warmup_lr=1e-4,
            weight_decay=1e-5,
            randaug="rand-m9-mstd0.5",
            reprob=0.2,
            kd_weight=2.0,
            kd_temperature=1.0,
        ),
        # Training a chosen architecture from scratch ("Red" column); assumed to follow the heaviest-path recipe.
        "scratch-imagenet": ChildRecipe(out_dir="runs/hardcore/scratch", **_HEAVIEST),
        "finetune-digits": ChildRecipe(
            out_dir="runs/hardcore/digits-finetune",
            space="digits",
            img_size=16,
            epochs=4,
            batch_size=128,
            opt="adamw",
            lr=1e-3,
            weight_decay=1e-4,
            sched="cosine",
            kd_weight=2.0,
            progress=False,
            device="cpu",
        ),
    }
)

SEARCH_RECIPES: dict[str, SearchRecipe] = RecipeTable(
    {
        f"hardcorenas-{name}": SearchRecipe(latency_ms=ms)
        for name, ms in zip("abcdef", (38.0, 40.0, 44.0, 50.0, 55.0, 60.0))
    }
)

# Every recipe of the package, for the ``recipes`` verb (the names are unique across the three tables).
ALL_RECIPES: dict[str, object] = RecipeTable({**SUPERNET_RECIPES, **CHILD_RECIPES, **SEARCH_RECIPES})
