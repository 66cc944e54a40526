"""The IQNAS demo on real digits: measure the estimator on a HardCoRe supernet, search exactly, compare with HardCoRe.

Paper: IQNAS / BINAS (arXiv 2110.12399). The claims shown in miniature, on scikit-learn's 1,797 real 8x8 digits
upscaled to 16x16 in miil-hardcore's reduced "digits" space (2 stages, up to 3 blocks, 8 options: 4,680 networks):

1. the measured estimator (one measurement per decision, 55 here) ranks held-out random networks by their one-shot
   accuracy (Kendall tau, Spearman), next to least-squares predictors fitted on random networks;
2. the integer program is solved exactly (the MILP equals brute-force enumeration of all networks);
3. at three latency budgets the IQNAS networks meet the budget and are compared with HardCoRe's search (BCSFW on the
   same supernet and table): predicted and measured latency, and accuracy on the held-out test digits after the same
   short fine-tune with distillation.

The supernet, table and fine-tunes are miil-hardcore's (recipes ``heaviest_path_digits``, ``multipath_digits`` and
``finetune_digits``, cut to 2, 6 and 1 epochs in the quick form, 15, 36 and 4 with ``long``); the estimator and test
networks use the 20% of the training digits the supernet did not see.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from miil.core.data import DigitsDataset
from miil.core.threads import limit_threads
from miil.core.train import seed_everything
from miil.hardcore import (
    CHILD_RECIPES,
    SPACES,
    SUPERNET_RECIPES,
    ChildDistillationStep,
    HardCoReSupernet,
    TimingConfig,
    calibrate_latency,
    extract_child,
    hardcore_search,
    held_out_split,
    make_trainer,
    measure_latency_table,
    measure_network_latency,
    train_supernet_stages,
)
from miil.hardcore.demo import held_out_accuracy

from .additive import latency_costs
from .encoding import random_architectures
from .estimator import measure_architectures, measure_contributions
from .exhaustive import brute_force_search
from .explain import insights
from .milp import IQPSolver
from .predictors import fit_predictor, ranking_quality

__all__ = ["run_demo"]


def run_demo(*, long: bool = False, seed: int = 0) -> dict:
    """Run the demo; ``passed`` when the estimator ranks held-out networks (Kendall tau > 0.3), the MILP optimum
    equals brute force, every IQNAS network meets its budget, and their mean test accuracy is within 2 points of
    HardCoRe's (or better)."""
    t_start = time.perf_counter()
    seed_everything(seed)
    # tiny tensors gain nothing from threads; the CPU is shared
    with limit_threads(1):
        return _run(long=long, seed=seed, t_start=t_start)


def _run(*, long: bool, seed: int, t_start: float) -> dict:
    space = SPACES["digits"]
    train_full = DigitsDataset("train", image_size=space.image_size, channels=3)
    test = DigitsDataset("test", image_size=space.image_size, channels=3)
    train, held_out = held_out_split(train_full, train_percent=80.0, seed=seed)
    held_batches = list(DataLoader(held_out, batch_size=512))

    timing = TimingConfig(threads=1, batch_size=1, warmup=3, repeats=20 if long else 10, clock="thread_cpu")
    table = measure_latency_table(space, timing, num_classes=10, progress=False)
    report = calibrate_latency(table, num_archs=6, seed=seed, progress=False)
    table = table.with_calibration(report.slope, report.intercept)
    latency = latency_costs(table)
    lo, hi = latency.bounds()
    print(
        f"latency table measured here (1 thread, batch 1), calibrated on 6 networks "
        f"({report.calibrated_mean_relative_error:.1%} error): lightest network {lo:.3f} ms, heaviest {hi:.3f} ms"
    )

    heavy_cfg = SUPERNET_RECIPES["heaviest_path_digits"]
    multi_cfg = replace(SUPERNET_RECIPES["multipath_digits"], epochs=12)
    child_cfg = replace(CHILD_RECIPES["finetune_digits"], epochs=2)
    if long:
        heavy_cfg = replace(heavy_cfg, epochs=3 * heavy_cfg.epochs)
        multi_cfg = replace(multi_cfg, epochs=3 * multi_cfg.epochs)
        child_cfg = replace(child_cfg, epochs=4)
    else:
        heavy_cfg = replace(heavy_cfg, epochs=2)
        multi_cfg = replace(multi_cfg, epochs=6)
        child_cfg = replace(child_cfg, epochs=1)
    with tempfile.TemporaryDirectory(prefix="miil-demo-iqnas-") as tmp:
        tmp = Path(tmp)
        supernet = HardCoReSupernet(space, num_classes=10)
        teacher = train_supernet_stages(
            supernet,
            train,
            replace(heavy_cfg, out_dir=str(tmp / "heavy"), seed=seed),
            replace(multi_cfg, out_dir=str(tmp / "multi"), seed=seed),
        )
        t_train = time.perf_counter() - t_start
        print(f"supernet trained (miil-hardcore recipes) [{t_train:.0f}s]")

        # 1. the estimator and its ranking quality on held-out random networks
        t0 = time.perf_counter()
        estimator = measure_contributions(supernet, held_batches, passes=2 if long else 1, seed=seed, progress=False)
        t_est = time.perf_counter() - t0
        n_fit, n_test = (200, 100) if long else (60, 40)
        archs = random_architectures(space, n_fit + n_test, seed=seed + 1)
        measured = measure_architectures(supernet, archs, held_batches)
        fit_archs, test_archs = archs[:n_fit], archs[n_fit:]
        y_fit, y_test = measured[:n_fit], measured[n_fit:]
        quality = {
            "estimator": ranking_quality(estimator.predict(test_archs), y_test),
            "estimator (depth reference)": ranking_quality(
                estimator.with_reference("depth").predict(test_archs), y_test
            ),
        }
        for kind in ("linear", "bilinear", "quadratic"):
            quality[f"least squares {kind} ({n_fit} nets)"] = ranking_quality(
                fit_predictor(space, fit_archs, y_fit, kind=kind).predict(test_archs), y_test
            )
        print(
            f"estimator: {estimator.metadata['measurements']} measurements in {t_est:.1f}s; base one-shot accuracy "
            f"{estimator.base:.2f}%; ranking of {n_test} held-out random networks by one-shot accuracy:"
        )
        for name, q in quality.items():
            print(f"  {name:<38} Kendall {q['kendall_tau']:+.3f}  Spearman {q['spearman']:+.3f}  MSE {q['mse']:.2f}")
        for line in insights(estimator):
            print("  " + line)

        # 2. the exact integer program, checked against enumeration of the whole space
        solver = IQPSolver(estimator, [latency])
        budgets = [lo + f * (hi - lo) for f in (0.2, 0.45, 0.7)]
        exact = []
        for target in budgets:
            milp = solver.solve({"latency": target})
            brute = brute_force_search(estimator, [latency], {"latency": target})
            exact.append(abs(milp.predicted - brute.predicted) < 1e-9 and abs(milp.objective - milp.predicted) < 1e-6)

        # 3. IQNAS vs HardCoRe at three budgets
        loader = DataLoader(held_out, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(seed))
        rows = []
        for target in budgets:
            milp = solver.solve({"latency": target})
            hard = hardcore_search(
                supernet,
                table,
                loader,
                target_ms=target,
                steps=100 if long else 15,
                gamma=0.5,
                gamma_schedule="decay",
                seed=seed,
                progress=False,
            )
            for method, arch, seconds in (
                ("IQNAS", milp.architecture, milp.seconds),
                ("HardCoRe", hard.architecture, hard.seconds),
            ):
                child = extract_child(supernet, arch)
                ft = ChildDistillationStep(teacher, kd_weight=child_cfg.kd_weight)
                out = tmp / f"ft-{method}-{target:.4f}"
                make_trainer(child, train, replace(child_cfg, out_dir=str(out), seed=seed), step_fn=ft).fit()
                rows.append(
                    {
                        "method": method,
                        "target_ms": target,
                        "predicted_ms": latency(arch),
                        "measured_ms": measure_network_latency(child, space, timing),
                        "estimated_accuracy": estimator(arch),
                        "test_accuracy": held_out_accuracy(child, test),
                        "search_s": seconds,
                    }
                )
    print(f"{'method':<9} {'target':>7} {'pred ms':>8} {'meas ms':>8} {'est. acc':>8} {'test acc':>8} {'search s':>8}")
    for r in rows:
        print(
            f"{r['method']:<9} {r['target_ms']:7.3f} {r['predicted_ms']:8.3f} {r['measured_ms']:8.3f} "
            f"{r['estimated_accuracy']:8.2f} {r['test_accuracy']:8.4f} {r['search_s']:8.3f}"
        )
    ours = [r for r in rows if r["method"] == "IQNAS"]
    base = [r for r in rows if r["method"] == "HardCoRe"]
    ours_met = sum(r["predicted_ms"] <= r["target_ms"] + 1e-9 for r in ours)
    ours_acc = float(np.mean([r["test_accuracy"] for r in ours]))
    base_acc = float(np.mean([r["test_accuracy"] for r in base]))
    tau = quality["estimator"]["kendall_tau"]
    passed = tau > 0.3 and all(exact) and ours_met == len(ours) and ours_acc >= base_acc - 0.02
    summary = (
        f"estimator Kendall tau {tau:.3f} (Spearman {quality['estimator']['spearman']:.3f}) on {n_test} held-out "
        f"networks; MILP == brute force at {sum(exact)}/{len(exact)} budgets; IQNAS met {ours_met}/{len(ours)} "
        f"budgets (table latency), test accuracy {ours_acc:.4f} vs HardCoRe {base_acc:.4f}"
    )
    print(summary + f" [{time.perf_counter() - t_start:.0f}s]")
    return {
        "passed": bool(passed),
        "summary": summary,
        "metrics": {
            "ranking": quality,
            "milp_equals_brute_force": exact,
            "rows": rows,
            "iqnas_accuracy": ours_acc,
            "hardcore_accuracy": base_acc,
            "iqnas_budgets_met": ours_met,
            "estimator_seconds": t_est,
        },
    }
