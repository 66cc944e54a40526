"""Benchmark: ML-Decoder head forward + backward, miil vs. timm's ML-Decoder vs. a GAP + linear head.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933), scalability
setting: backbone features [B, 2048, H, W] into a head of 80 (MS-COCO, K = 80), 1,000 (ImageNet, K = 100) and 9,605
(OpenImages, K = 200) classes. All three heads are timed in the same process on the same inputs, taking turns within
every repeat (training mode, forward + backward, median over repeats; then timm and miil in inference mode, forward
only), and the miil head is checked to give timm's logits (eval mode, same weights through miil's converter). timm's
module needs two small shims to run on PyTorch >= 2.1 (see ``runnable_timm``); they do not change its math.

    uv run python tools/bench/mldecoder.py                 # CPU defaults (batch 8, 7x7 features)
    uv run python tools/bench/mldecoder.py --threads 1 --clock cpu   # one thread, CPU time (shared machines)
    uv run python tools/bench/mldecoder.py --device cuda --batch-size 64 --spatial 14

``--clock cpu`` times with the process's CPU time instead of the wall clock: with ``--threads 1`` that is the time
the head itself computed, which other processes on a shared machine inflate far less than the wall clock.
"""

from __future__ import annotations

import argparse
import statistics
import time
import types

import torch
import torch.nn as nn
from timm.layers.ml_decoder import MLDecoder as TimmMLDecoder

from miil.mldecoder import MLDecoder, convert_state_dict

SIZES = ((80, 80), (1000, 100), (9605, 200))
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = time.perf_counter


def runnable_timm(module: TimmMLDecoder) -> TimmMLDecoder:
    """Let timm's ML-Decoder run on PyTorch >= 2.1: ``nn.TransformerDecoder`` reads ``layers[0].self_attn`` and
    passes ``*_is_causal`` arguments that timm's layer lacks. Weights and math are unchanged."""
    layer = module.decoder.layers[0]
    object.__setattr__(layer, "self_attn", layer.multihead_attn)
    forward = type(layer).forward

    def patched(self, tgt, memory, tgt_is_causal=None, memory_is_causal=False, **kwargs):
        return forward(self, tgt, memory, **kwargs)

    layer.forward = types.MethodType(patched, layer)
    return module


class GapLinear(nn.Module):
    """The usual head: global average pooling and one linear layer."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean((2, 3)))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _fwd_bwd_ms(head: nn.Module, x: torch.Tensor) -> float:
    head.zero_grad(set_to_none=True)
    xi = x.detach().requires_grad_(True)
    _sync(x.device)
    t0 = _clock()
    head(xi).float().square().mean().backward()
    _sync(x.device)
    return 1000 * (_clock() - t0)


def time_fwd_bwd(heads: dict[str, nn.Module], x: torch.Tensor, warmup: int, repeats: int) -> dict[str, float]:
    """Median milliseconds of one training-mode forward + backward (input gradient included) per head.

    The heads take turns within every repeat, so that a change in machine load affects all of them alike.
    """
    for head in heads.values():
        head.train()
        for _ in range(warmup):
            _fwd_bwd_ms(head, x)
    times: dict[str, list[float]] = {name: [] for name in heads}
    for _ in range(repeats):
        for name, head in heads.items():
            times[name].append(_fwd_bwd_ms(head, x))
    return {name: statistics.median(t) for name, t in times.items()}


def _eval_fwd_ms(head: nn.Module, x: torch.Tensor) -> float:
    _sync(x.device)
    t0 = _clock()
    with torch.no_grad():
        head(x)
    _sync(x.device)
    return 1000 * (_clock() - t0)


def time_eval_fwd(heads: dict[str, nn.Module], x: torch.Tensor, warmup: int, repeats: int) -> dict[str, float]:
    """Median milliseconds of one inference-mode forward per head (heads take turns, as above)."""
    for head in heads.values():
        head.eval()
        for _ in range(warmup):
            _eval_fwd_ms(head, x)
    times: dict[str, list[float]] = {name: [] for name in heads}
    for _ in range(repeats):
        for name, head in heads.items():
            times[name].append(_eval_fwd_ms(head, x))
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--in-features", type=int, default=2048)
    parser.add_argument("--spatial", type=int, default=7, help="feature map side (7 for 224 input, 14 for 448)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="wall clock or process CPU time")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.clock == "cpu" and device.type != "cpu":
        parser.error("--clock cpu measures CPU time; use --clock wall on accelerators")
    global _clock
    _clock = CLOCKS[args.clock]
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch_size, args.in_features, args.spatial, args.spatial, device=device)
    print(
        f"ML-Decoder head forward+backward, training mode, median of {args.repeats} (after {args.warmup} warm-up) | "
        f"features {list(x.shape)} | {device} | torch {torch.__version__} | threads {torch.get_num_threads()} | "
        f"{args.clock} clock"
    )
    header = (
        f"{'classes':>7} {'K':>4} | {'timm ms':>9} {'miil ms':>9} {'GAP+fc ms':>9} | "
        f"{'miil/timm':>9} {'miil/GAP':>8} | {'eval fwd timm':>13} {'miil':>7} {'ratio':>6} | {'max |logit diff|':>16}"
    )
    print(header)
    print("-" * len(header))
    all_faster = True
    for num_classes, groups in SIZES:
        theirs = runnable_timm(TimmMLDecoder(num_classes, num_of_groups=groups, initial_num_features=args.in_features))
        ours = MLDecoder(num_classes, in_features=args.in_features, num_groups=groups)
        ours.load_state_dict(convert_state_dict(theirs.state_dict(), ours, layout="timm"))
        theirs, ours = theirs.to(device), ours.to(device)
        gap = GapLinear(args.in_features, num_classes).to(device)
        with torch.no_grad():
            theirs.eval(), ours.eval()
            diff = (theirs(x) - ours(x)).abs().max().item()
        ms = time_fwd_bwd({"timm": theirs, "miil": ours, "gap": gap}, x, args.warmup, args.repeats)
        t_timm, t_ours, t_gap = ms["timm"], ms["miil"], ms["gap"]
        inf = time_eval_fwd({"timm": theirs, "miil": ours}, x, args.warmup, args.repeats)
        all_faster &= t_ours <= t_timm
        print(
            f"{num_classes:>7} {ours.num_groups:>4} | {t_timm:>9.1f} {t_ours:>9.1f} {t_gap:>9.1f} | "
            f"{t_ours / t_timm:>9.2f} {t_ours / t_gap:>8.1f} | {inf['timm']:>13.1f} {inf['miil']:>7.1f} "
            f"{inf['miil'] / inf['timm']:>6.2f} | {diff:>16.2e}"
        )
        if diff > 1e-4:
            raise SystemExit(f"outputs differ from timm's by {diff:.2e} at {num_classes} classes")
    print(f"miil forward+backward at most timm's time at every size: {'yes' if all_faster else 'no'}")


if __name__ == "__main__":
    main()
