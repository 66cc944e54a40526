"""torch.distributed helpers for runs launched by torchrun (DDP; gloo on CPU, nccl on CUDA).

Everything here also works in a plain single process: the helpers fall back to identity operations when no
process group is initialised, so library code calls them unconditionally.
"""

from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist

__all__ = [
    "all_gather_cat",
    "all_reduce_sum",
    "barrier",
    "get_rank",
    "get_world_size",
    "init_distributed",
    "is_distributed",
    "is_main_process",
    "launched_by_torchrun",
    "local_rank",
    "resolve_device",
    "shutdown_distributed",
]


def launched_by_torchrun() -> bool:
    """True when the environment variables that torchrun sets describe more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The device a name means: "auto"/None is CUDA when present (this rank's GPU under torchrun), else the CPU.

    Args:
        device: "auto", "cpu", "cuda", "cuda:N" or a ``torch.device``; a plain "cuda" becomes this rank's GPU.
    """
    want = str(device) if device is not None else "auto"
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(want)
    except RuntimeError:
        from .errors import UserError

        raise UserError(f"unknown device {want!r}: use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        from .errors import UserError

        raise UserError(f"device {want!r} was asked for but CUDA is not available here: use --device cpu or auto")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank() if launched_by_torchrun() else torch.cuda.current_device())
    return dev


def init_distributed(device: str | torch.device | None = None) -> torch.device:
    """Initialise the process group when launched by torchrun and return this process's device.

    Args:
        device: "auto"/None picks ``cuda:<LOCAL_RANK>`` when CUDA is available, else CPU; an explicit device is
            respected (a plain "cuda" becomes this rank's GPU).
    """
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if launched_by_torchrun() and not is_distributed():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, device_id=dev if dev.type == "cuda" else None)
        # A process group still alive at interpreter exit can abort the process ("terminate called without an
        # active exception" from gloo's threads) after all the work is done; tear it down first.
        atexit.register(shutdown_distributed, wait=False)
    return dev


def shutdown_distributed(wait: bool = True) -> None:
    """Destroy the process group (no-op without one).

    Args:
        wait: meet the other ranks at a barrier first, so that no rank tears down its connections while another
            still talks to it. Pass False from error paths, where the other ranks may never arrive.
    """
    if not is_distributed():
        return
    if wait:
        dist.barrier()
    dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def _comm_device(t: torch.Tensor) -> torch.device:
    # nccl only moves CUDA tensors; gloo only CPU tensors.
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks (returns a new tensor on the input's device)."""
    if not is_distributed():
        return t.clone()
    work = t.detach().to(_comm_device(t)).clone()
    dist.all_reduce(work, op=dist.ReduceOp.SUM)
    return work.to(t.device)


def all_gather_cat(t: torch.Tensor) -> torch.Tensor:
    """Concatenate along dim 0 the tensors of every rank; first dimensions may differ between ranks.

    A rank with nothing to contribute may pass an empty tensor of any shape and dtype (e.g. ``torch.zeros(0)``): it
    takes the trailing shape and dtype of the first rank that has rows.
    """
    if not is_distributed():
        return t
    metas: list = [None] * get_world_size()
    dist.all_gather_object(metas, (tuple(t.shape), t.dtype))
    filled = [m for m in metas if m[0] and m[0][0] > 0]
    if t.numel() == 0 and filled:
        t = t.new_zeros((0, *filled[0][0][1:]), dtype=filled[0][1])
    dev = _comm_device(t)
    work = t.detach().to(dev)
    n = torch.tensor([work.shape[0]], device=dev, dtype=torch.long)
    sizes = [torch.zeros_like(n) for _ in range(get_world_size())]
    dist.all_gather(sizes, n)
    sizes_i = [int(s.item()) for s in sizes]
    longest = max(sizes_i)
    if work.shape[0] < longest:
        pad = work.new_zeros((longest - work.shape[0], *work.shape[1:]))
        work = torch.cat([work, pad])
    parts = [torch.empty_like(work) for _ in sizes_i]
    dist.all_gather(parts, work.contiguous())
    return torch.cat([p[:s] for p, s in zip(parts, sizes_i)]).to(t.device)
