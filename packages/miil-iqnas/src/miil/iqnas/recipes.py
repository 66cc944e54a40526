"""IQNAS recipes as data (arXiv 2110.12399, section 4; the BINAS code's README commands).

- Estimation: the 255 measurements on the 20% of ImageNet's training set that the supernet did not train on,
  averaged over 10 passes (``--epochs 10`` of ``accuracy_contribution.py``).
- Searches: one per published model, BINAS A ... F, at the latency of the paper's table (Intel Xeon CPU, batch 1; they
  only mean something with a latency table measured on a comparable CPU, see ``miil hardcore lut``).
- The chosen network is fine-tuned with miil-hardcore's ``finetune`` (KD from the heaviest path); ``miil iqnas train``
  is that command, with miil-hardcore's child recipes (``finetune-imagenet``, ``finetune-digits``).

The ``*-digits`` recipes are the small settings of the demo and the tests (real scikit-learn digits). Names are
kebab-case; the tables also answer the earlier snake_case spellings (miil-hardcore's ``RecipeTable``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from miil.hardcore.recipes import CHILD_RECIPES, RecipeTable

__all__ = ["ALL_RECIPES", "ESTIMATE_RECIPES", "SEARCH_RECIPES", "EstimateRecipe", "IQNASSearchRecipe"]

METHODS = ("milp", "dp", "frank_wolfe", "evolution")


@dataclass(frozen=True)
class EstimateRecipe:
    """Measuring the accuracy estimator (section 3.1).

    Args:
        passes: Passes over the held-out images per measurement.
        batch_size: Images per forward.
        train_percent: Percent of the training set the supernet trained on; the rest is measured on.
        reference: "base" (the paper) or "depth" (block coefficients relative to their fixed-depth measurement).
        img_size: Resolution of the held-out images.
        num_test: Random held-out networks measured one-shot to report ranking quality (the paper: 500).
        seed: Seed of the uniform paths and of the test networks.
    """

    passes: int = field(default=10, metadata={"help": "passes over the held-out images per measurement"})
    batch_size: int = field(default=128, metadata={"help": "images per forward"})
    train_percent: float = field(default=80.0, metadata={"help": "percent of train the supernet used; rest measures"})
    reference: str = field(default="base", metadata={"help": "base (paper) | depth"})
    img_size: int = field(default=224, metadata={"help": "resolution of the held-out images"})
    num_test: int = field(default=0, metadata={"help": "random networks measured for ranking quality (paper: 500)"})
    seed: int = field(default=0, metadata={"help": "seed of the uniform paths and test networks"})


@dataclass(frozen=True)
class IQNASSearchRecipe:
    """An IQNAS search (section 3.2).

    Args:
        latency_ms: Latency limit (ms per sample on the table's device); 0 for none.
        params_m: Parameter limit (millions); 0 for none.
        mflops: FLOPs limit (millions); 0 for none.
        method: "milp" (exact), "dp" (exact on a latency grid), "frank_wolfe" or "evolution".
        solver: cvxpy MILP solver ("HIGHS" or "SCIPY").
        seed: Seed of the randomised methods.
    """

    latency_ms: float = field(default=40.0, metadata={"help": "latency limit in ms per sample (0: none)"})
    params_m: float = field(default=0.0, metadata={"help": "parameter limit in millions (0: none)"})
    mflops: float = field(default=0.0, metadata={"help": "FLOPs limit in millions (0: none)"})
    method: str = field(default="milp", metadata={"help": "milp | dp | frank_wolfe | evolution"})
    solver: str = field(default="HIGHS", metadata={"help": "cvxpy MILP solver: HIGHS | SCIPY"})
    seed: int = field(default=0, metadata={"help": "seed of frank_wolfe / evolution"})


ESTIMATE_RECIPES: dict[str, EstimateRecipe] = RecipeTable(
    {
        "binas-imagenet": EstimateRecipe(passes=10, batch_size=128, img_size=224),
        "estimate-digits": EstimateRecipe(passes=2, batch_size=256, img_size=16, num_test=30),
    }
)

SEARCH_RECIPES: dict[str, IQNASSearchRecipe] = RecipeTable(
    {
        f"binas-{name}": IQNASSearchRecipe(latency_ms=ms)
        for name, ms in zip("abcdef", (37.0, 41.0, 45.0, 50.0, 56.0, 59.0))
    }
)

# Every recipe ``miil iqnas`` runs, for the ``recipes`` verb (``train`` fine-tunes with miil-hardcore's child recipes).
ALL_RECIPES: dict[str, object] = RecipeTable({**ESTIMATE_RECIPES, **SEARCH_RECIPES, **CHILD_RECIPES})
