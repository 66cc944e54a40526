"""``miil core`` subcommands: tools around the core (inspect a checkpoint safely)."""

from __future__ import annotations

import argparse
import json

from .cli_args import BoolAction

__all__ = ["register"]


def _inspect(args: argparse.Namespace) -> int:
    from .io import extract_state_dict, load_checkpoint  # torch: only when the command runs

    obj = load_checkpoint(args.checkpoint)
    state = extract_state_dict(obj, key=args.key)
    total = 0
    for name, tensor in state.items():
        total += tensor.numel()
        if not args.summary:
            print(f"{name:<70} {str(tuple(tensor.shape)):<22} {str(tensor.dtype).replace('torch.', '')}")
    extra = sorted(k for k in obj if k not in state) if isinstance(obj, dict) and obj is not state else []
    print(json.dumps({"tensors": len(state), "parameters": total, "other_top_level_keys": extra}))
    return 0


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    p = sub.add_parser("inspect", help="list the tensors of a checkpoint (never unpickles objects)")
    p.add_argument("checkpoint", help="a .safetensors file or a weights-only torch checkpoint")
    p.add_argument("--key", default=None, help="key of the state dict inside the checkpoint")
    p.add_argument("--summary", action=BoolAction, help="print only the totals")
    p.set_defaults(func=_inspect)
