"""The CSL demo: partially annotated digit mosaics, Ignore vs Negative vs the class-aware selective loss.

Paper: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss" (arXiv 2110.10955),
Table of the simulated-COCO experiments, in miniature. The training labels of the embedded real-digit mosaics
(long-tailed, 10 classes) are made partial with RPS(0.5) and with FPC(200); each method trains the same small CNN
with the same budget, and the held-out, fully labelled test mosaics (built from digits never seen in training) give
the mAP. Methods, as the paper's columns: Ignore (CE), Negative (CE), Negative with the partial asymmetric loss
(the CSL row's focusing, without the selection) and CSL (selective + P-ASL). As in the paper, the Ignore model is also
the temporary model whose average predictions give the class prior; the demo prints how close that prior is to the
true class frequencies, next to the naive estimate from the partial annotations.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from miil.core.threads import limit_threads

from .pipeline import load_run_model, mosaic_dataset, train_csl
from .prior import ClassPrior, estimate_prior
from .recipes import get_recipe
from .simulation import simulate_partial_labels

__all__ = ["run_demo"]

_SETTINGS = (("RPS(0.5)", "mosaic_rps0.5"), ("FPC(200)", "mosaic_fpc200"))
_METHODS = (("ignore_ce", "Ignore CE"), ("negative_ce", "Negative CE"), ("negative_pasl", "Negative P-ASL"))


def _prior_and_errors(prefix: str, model: torch.nn.Module) -> tuple[ClassPrior, float, float]:
    """The temporary model's class prior, and its and the naive estimate's mean error against the true frequencies."""
    train = mosaic_dataset("train")
    truth = train.targets.mean(0)
    cfg = get_recipe(f"{prefix}_csl")
    partial, _ = simulate_partial_labels(train.targets, cfg.simulate, cfg.simulate_param, seed=cfg.simulate_seed)
    annotated = (partial != -1).sum(0).clamp(min=1)
    naive = (partial == 1).sum(0) / annotated
    prior = estimate_prior(model, train, train.classes)
    estimated = prior.for_classes(train.classes)
    return prior, float((estimated - truth).abs().mean()), float((naive - truth).abs().mean())


def run_demo(*, long: bool = False, seed: int = 0) -> dict:
    """Train the four methods on both simulations; ``passed`` when CSL beats Ignore CE and Negative CE in both."""
    epochs = 20 if long else 2
    # The mosaic CNN is tiny: intra-op threads only add synchronisation, and stall when the CPU is shared.
    with limit_threads(1):
        results, prior_err = _run_settings(epochs, seed)
    return _report(results, prior_err, epochs)


def _run_settings(epochs: int, seed: int) -> tuple[dict[str, dict[str, float]], dict[str, tuple[float, float]]]:
    results: dict[str, dict[str, float]] = {}
    prior_err: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="miil-demo-csl-") as tmp:
        for label, prefix in _SETTINGS:
            row: dict[str, float] = {}

            def run(method: str, verbose: bool = False, prefix: str = prefix, **overrides):
                cfg = get_recipe(
                    f"{prefix}_{method}",
                    out_dir=str(Path(tmp) / prefix / method),
                    epochs=epochs,
                    progress=False,
                    device="cpu",
                    seed=seed,
                    **overrides,
                )
                return train_csl(cfg, recipe=f"{prefix}_{method}", verbose=verbose)

            row["Ignore CE"] = run("ignore_ce", verbose=True).best_metric
            # Stage 1 of CSL: the Ignore model is the temporary model that estimates the class prior.
            model, _, _ = load_run_model(Path(tmp) / prefix / "ignore_ce")
            prior, err, naive_err = _prior_and_errors(prefix, model)
            prior_err[label] = (err, naive_err)
            prior_file = Path(tmp) / prefix / "prior.csv"
            prior.save(prior_file)
            for method, name in _METHODS[1:]:
                row[name] = run(method).best_metric
            row["CSL"] = run("csl", prior_path=str(prior_file)).best_metric
            results[label] = row
            print(f"[{label}] " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)
    return results, prior_err


def _report(results: dict[str, dict[str, float]], prior_err: dict[str, tuple[float, float]], epochs: int) -> dict:
    names = [name for _, name in _METHODS] + ["CSL"]
    print(f"\nheld-out mAP on fully labelled test mosaics (1,000 images of unseen digits), {epochs} epochs per run")
    print(f"{'partial labels':<15}" + "".join(f"{n:>16}" for n in names))
    for label, row in results.items():
        print(f"{label:<15}" + "".join(f"{row[n]:>16.2f}" for n in names))
    print("\nclass prior, mean |error| against the true class frequencies:")
    for label, (err, naive) in prior_err.items():
        print(f"  {label:<10} temporary ignore model {err:.3f} | naive count of partial annotations {naive:.3f}")

    wins = {label: row["CSL"] > row["Ignore CE"] and row["CSL"] > row["Negative CE"] for label, row in results.items()}
    beats_pasl = {label: row["CSL"] > row["Negative P-ASL"] for label, row in results.items()}
    passed = all(wins.values())
    summary = "; ".join(
        f"{label}: CSL {row['CSL']:.1f} vs Ignore {row['Ignore CE']:.1f} / Negative {row['Negative CE']:.1f} / "
        f"Negative P-ASL {row['Negative P-ASL']:.1f} mAP"
        for label, row in results.items()
    )
    metrics = {f"{label} {name}": value for label, row in results.items() for name, value in row.items()}
    metrics.update({f"{label} prior error": e for label, (e, _) in prior_err.items()})
    metrics.update({f"{label} naive prior error": n for label, (_, n) in prior_err.items()})
    metrics.update({f"{label} CSL beats Negative P-ASL": float(v) for label, v in beats_pasl.items()})
    return {"passed": passed, "summary": summary, "metrics": metrics}
