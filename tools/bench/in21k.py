"""Semantic softmax loss: vectorized (``miil.in21k``) vs a per-sample loop reference, forward + backward.

The reference builds the per-level targets the way the original ``convert_targets_to_semantic_targets`` does (a
Python loop over the batch and over each label's ancestors, looking every ancestor up in its level's index list),
then computes the same per-level label-smoothed cross entropy. Ours looks the targets up in the precomputed
``[C, L]`` table and gathers all level logits at once. Both run on the shipped fall11 tree (C = 11,221, 11 levels),
batch 256, on the same random logits and labels; values and gradients must agree. Goal: >= 10x faster. For scale, the
table also times one flat label-smoothed cross entropy over the same 11,221 logits (PyTorch's fused kernel).

Times are medians of wall-clock time; on the CPU the table also gives the ratio of process CPU time (min over the
repeats), which is much steadier on a shared machine.

    uv run python tools/bench/in21k.py [--batch 256] [--repeats 15] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from miil.in21k import SemanticHierarchy, packaged_tree, semantic_softmax_loss


def loop_targets(targets: torch.Tensor, hierarchy: SemanticHierarchy, chains: list[list[int]]) -> torch.Tensor:
    """Per-sample loop: for each label, walk its chain and find each ancestor's position in its level."""
    level_of_depth = {d: i for i, d in enumerate(hierarchy.depths)}
    out = torch.full((targets.shape[0], hierarchy.num_levels), -1, dtype=torch.long)
    for i, target in enumerate(targets.cpu().tolist()):
        chain = chains[target]
        depth = len(chain) - 1
        for j, cls in enumerate(chain):
            level = level_of_depth.get(depth - j)
            if level is None:
                continue
            out[i, level] = torch.where(hierarchy.level_indices[level] == cls)[0][0]
    return out.to(targets.device)


def loop_loss(logits: torch.Tensor, targets: torch.Tensor, hierarchy: SemanticHierarchy, chains, eps=0.2):
    """The reference loss: loop-built targets, then one smoothed one-hot cross entropy per level."""
    level_targets = loop_targets(targets, hierarchy, chains)
    total = logits.new_zeros(())
    for level, index in enumerate(hierarchy.level_indices):
        z = logits[:, index.to(logits.device)]
        t = level_targets[:, level]
        log_p = F.log_softmax(z, dim=1)
        q = torch.zeros_like(z).scatter_(1, t.clamp(min=0).unsqueeze(1), 1.0)
        q = q * (1 - eps) + eps / z.shape[1]
        ce = -(q * log_p).sum(dim=1) * (t >= 0)
        total = total + hierarchy.level_weights[level].to(logits.device) * ce.mean()
    return total


def _time(fn, repeats: int, device: torch.device) -> tuple[float, float]:
    """(median wall seconds, min process CPU seconds) of ``fn``."""
    wall, cpu = [], []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), min(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=15)
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

    ours = lambda x: semantic_softmax_loss(x, targets, hierarchy)  # noqa: E731
    ref = lambda x: loop_loss(x, targets, hierarchy, chains)  # noqa: E731
    v_ours, g_ours = run(ours)
    v_ref, g_ref = run(ref)
    torch.testing.assert_close(v_ours, v_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-4, atol=1e-7)

    flat = lambda x: F.cross_entropy(x, targets, label_smoothing=0.2)  # noqa: E731
    rows = [
        (
            "targets [B, L]",
            lambda: hierarchy.semantic_targets(targets),
            lambda: loop_targets(targets, hierarchy, chains),
        ),
        ("loss fwd + bwd", lambda: run(ours), lambda: run(ref)),
    ]
    print(
        f"semantic softmax, fall11 tree: C={len(tree)}, {hierarchy.num_levels} levels, batch {args.batch}, "
        f"{args.device}, {args.threads} thread(s), {args.repeats} repeats"
    )
    print(f"values: ours {v_ours.item():.6f} | loop {v_ref.item():.6f} (gradients equal)")
    cpu_col = device.type == "cpu"
    header = f"{'step':<16} {'vectorized ms':>14} {'per-sample loop ms':>19} {'speed-up':>9}"
    print(header + (f" {'speed-up (CPU time)':>20}" if cpu_col else ""))
    for name, fast, slow in rows:
        fast()
        slow()
        (w_fast, c_fast), (w_slow, c_slow) = _time(fast, args.repeats, device), _time(slow, args.repeats, device)
        line = f"{name:<16} {1e3 * w_fast:>14.2f} {1e3 * w_slow:>19.2f} {w_slow / w_fast:>8.1f}x"
        print(line + (f" {c_slow / max(c_fast, 1e-9):>19.1f}x" if cpu_col else ""))
    w_flat, c_flat = _time(lambda: run(flat), args.repeats, device)
    w_ours, c_ours = _time(lambda: run(ours), args.repeats, device)
    print(
        f"for scale: one flat label-smoothed CE over the same logits, fwd + bwd: {1e3 * w_flat:.2f} ms "
        f"(ours / flat: {w_ours / w_flat:.1f}x wall"
        + (f", {c_ours / max(c_flat, 1e-9):.1f}x CPU time)" if cpu_col else ")")
    )


if __name__ == "__main__":
    main()
