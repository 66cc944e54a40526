"""Semantic softmax loss, forward + backward: the fused loss of ``miil.in21k`` against three references.

All run on the shipped fall11 tree (C = 11,221, 11 softmax levels), batch 256, on the same random logits and labels;
each reference's value and gradient must equal ours before anything is timed. Goal of issue 6: >= 10x faster than
the per-sample loop.

* ``released``: what Alibaba-MIIL/ImageNet21K's ``SemanticSoftmaxLoss`` does per batch: ``convert_targets_to_
  semantic_targets`` loops over the samples on the CPU (for each ancestor of the label, ``torch.where`` over its
  level's index list), then one iteration per level: advanced indexing ``logits[:, level]``, log-softmax, a dense
  smoothed one-hot, the dense validity mask, the sum over classes and the batch mean.
* ``per-sample loop``: the loss written sample by sample, the way the paper states it: for every sample and every
  level its label reaches, the label's ancestor at that depth and a log-softmax over that level's logits.
* ``per-level loop``: the previous ``miil.in21k`` loss: targets from the precomputed table, then one log-softmax,
  gather and mean per level, differentiated by autograd.

For scale, the table also times one flat label-smoothed cross entropy over the same 11,221 logits (PyTorch's fused
kernel), and the target building alone (table lookup vs the released per-sample loop).

The methods are timed in rounds (each method once per round, the per-sample loop only in the first rounds), so that
load from other processes on a shared machine hits them alike. Columns: the median wall time, the median over rounds
of (method / ours) wall time, and on the CPU the min process CPU time and the median per-round CPU-time ratio.

    uv run python tools/bench/in21k.py [--batch 256] [--repeats 15] [--per-sample-repeats 5] [--threads 1]
        [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from miil.in21k import SemanticHierarchy, packaged_tree, semantic_softmax_loss


def released_targets(targets: torch.Tensor, hierarchy: SemanticHierarchy, chains: list[list[int]]) -> torch.Tensor:
    """The released target conversion: a CPU loop over the batch and over each label's chain of ancestors."""
    level_of_depth = {d: i for i, d in enumerate(hierarchy.depths)}
    out = torch.zeros(targets.shape[0], hierarchy.num_levels) - 1
    for i, target in enumerate(targets.cpu()):
        chain = chains[target]
        depth = len(chain) - 1
        for j, cls in enumerate(chain):
            level = level_of_depth.get(depth - j)
            if level is None:
                continue
            out[i, level] = torch.where(hierarchy.level_indices[level] == cls)[0]
    return out.long().to(targets.device)


def released_loss(logits, targets, hierarchy: SemanticHierarchy, chains, eps: float = 0.2) -> torch.Tensor:
    """The released loss: loop-built targets, then a dense smoothed one-hot cross entropy per level."""
    level_targets = released_targets(targets, hierarchy, chains)
    weights = hierarchy.tensors(logits.device).level_weights
    total = logits.new_zeros(())
    for level, index in enumerate(hierarchy.level_indices):
        z = logits[:, index.to(logits.device)]
        t = level_targets[:, level]
        log_p = F.log_softmax(z, dim=1)
        q = torch.zeros_like(z).scatter_(1, t.clamp(min=0).unsqueeze(1), 1.0)
        q.mul_(1 - eps).add_(eps / z.shape[1])
        ce = -q.mul(log_p)
        ce = ce * (t >= 0).unsqueeze(1)
        total = total + ce.sum(dim=-1).mean() * weights[level]
    return total


def per_sample_loss(logits, targets, hierarchy: SemanticHierarchy, chains, eps: float = 0.2) -> torch.Tensor:
    """The loss sample by sample: each level the label reaches gets its own log-softmax and smoothed CE."""
    level_of_depth = {d: i for i, d in enumerate(hierarchy.depths)}
    position = {int(c): (level, k) for level, ix in enumerate(hierarchy.level_indices) for k, c in enumerate(ix)}
    indices = [ix.to(logits.device) for ix in hierarchy.level_indices]
    weights = hierarchy.level_weights.tolist()
    batch = logits.shape[0]
    total = logits.new_zeros(())
    for b, target in enumerate(targets.tolist()):
        chain = chains[target]
        depth = len(chain) - 1
        for j, cls in enumerate(chain):
            if depth - j not in level_of_depth:
                continue
            level, k = position[cls]
            log_p = F.log_softmax(logits[b].index_select(0, indices[level]), dim=0)
            ce = -(1 - eps) * log_p[k] - eps * log_p.mean()
            total = total + ce * (weights[level] / batch)
    return total


def per_level_loss(logits, targets, hierarchy: SemanticHierarchy, eps: float = 0.2) -> torch.Tensor:
    """The previous miil loss: table targets, one log-softmax per level, autograd backward."""
    level_targets = hierarchy.semantic_targets(targets)
    losses = []
    for level, z in enumerate(hierarchy.split_logits(logits)):
        t = level_targets[:, level]
        log_p = F.log_softmax(z, dim=1)
        nll = -log_p.gather(1, t.clamp(min=0).unsqueeze(1)).squeeze(1)
        ce = (1.0 - eps) * nll - eps * log_p.mean(dim=1)
        losses.append(torch.where(t >= 0, ce, 0.0).sum() / logits.shape[0])
    return (torch.stack(losses) * hierarchy.tensors(logits.device).level_weights).sum()


def _time_once(fn, device: torch.device) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call of ``fn``."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, time.process_time() - c0


def _time_rounds(fns: dict, repeats: dict, device: torch.device) -> dict[str, dict[str, float]]:
    """Time every function once per round, round after round, so that a load change on a shared machine hits all
    of them alike; the first function is the reference of the per-round ratios.

    Returns, per function: median wall seconds, min CPU seconds, and the medians over rounds of its wall and CPU
    time divided by the reference's in the same round.
    """
    names = list(fns)
    samples: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in names}
    for name in names:
        fns[name]()  # warm-up
    for r in range(max(repeats.values())):
        ref_wall, ref_cpu = _time_once(fns[names[0]], device)
        samples[names[0]].append((ref_wall, ref_cpu, 1.0, 1.0))
        for name in names[1:]:
            if r < repeats[name]:
                wall, cpu = _time_once(fns[name], device)
                samples[name].append((wall, cpu, wall / ref_wall, cpu / max(ref_cpu, 1e-9)))
    return {
        name: {
            "wall": statistics.median(x[0] for x in rows),
            "cpu": min(x[1] for x in rows),
            "wall_ratio": statistics.median(x[2] for x in rows),
            "cpu_ratio": statistics.median(x[3] for x in rows),
        }
        for name, rows in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--per-sample-repeats", type=int, default=5, help="repeats of the slow per-sample loop")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    tree = packaged_tree("fall11")
    hierarchy = SemanticHierarchy(tree)
    chains = tree.class_tree_list
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(args.batch, len(tree), generator=g).to(device)
    targets = torch.randint(0, len(tree), (args.batch,), generator=g).to(device)

    def run(loss_fn):
        x = logits.clone().requires_grad_(True)
        value = loss_fn(x)
        value.backward()
        return value.detach(), x.grad

    methods = {
        "fused (ours)": lambda x: semantic_softmax_loss(x, targets, hierarchy),
        "per-level loop": lambda x: per_level_loss(x, targets, hierarchy),
        "released": lambda x: released_loss(x, targets, hierarchy, chains),
        "per-sample loop": lambda x: per_sample_loss(x, targets, hierarchy, chains),
    }
    v_ours, g_ours = run(methods["fused (ours)"])
    values = {}
    for name, fn in methods.items():
        value, grad = run(fn)
        torch.testing.assert_close(value, v_ours, rtol=1e-5, atol=1e-5, msg=f"{name}: loss value differs from ours")
        torch.testing.assert_close(grad, g_ours, rtol=1e-4, atol=1e-7, msg=f"{name}: gradient differs from ours")
        values[name] = value.item()

    print(
        f"semantic softmax, fall11 tree: C={len(tree)}, {hierarchy.num_levels} levels, batch {args.batch}, "
        f"{args.device}, {args.threads} thread(s), {args.repeats} repeats ({args.per_sample_repeats} per-sample loop)"
    )
    print("values: " + " | ".join(f"{k} {v:.6f}" for k, v in values.items()) + " (gradients equal)")
    cpu_col = device.type == "cpu"
    header = f"{'loss fwd + bwd':<18} {'median ms':>10} {'ours faster by':>15}"
    print(header + (f" {'min CPU ms':>11} {'by CPU time':>12}" if cpu_col else ""))
    flat = lambda x: F.cross_entropy(x, targets, label_smoothing=0.2)  # noqa: E731
    fns = {name: (lambda fn=fn: run(fn)) for name, fn in methods.items()}
    fns["flat CE (scale)"] = lambda: run(flat)
    repeats = {name: args.per_sample_repeats if name == "per-sample loop" else args.repeats for name in fns}
    for name, t in _time_rounds(fns, repeats, device).items():
        line = f"{name:<18} {1e3 * t['wall']:>10.2f} {t['wall_ratio']:>14.1f}x"
        print(line + (f" {1e3 * t['cpu']:>11.2f} {t['cpu_ratio']:>11.1f}x" if cpu_col else ""))

    targets_timed = _time_rounds(
        {
            "table": lambda: hierarchy.semantic_targets(targets),
            "loop": lambda: released_targets(targets, hierarchy, chains),
        },
        {"table": args.repeats, "loop": args.repeats},
        device,
    )
    w_table, w_loop = targets_timed["table"]["wall"], targets_timed["loop"]["wall"]
    print(
        f"targets [B, L] alone: table {1e3 * w_table:.3f} ms, released loop {1e3 * w_loop:.2f} ms "
        f"({targets_timed['loop']['wall_ratio']:.0f}x)"
    )


if __name__ == "__main__":
    main()
