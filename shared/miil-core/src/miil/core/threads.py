"""Intra-op thread limits for small models (demos, tests): on a shared CPU extra threads of tiny kernels only add
synchronisation, and they stall when other processes hold the cores."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["limit_threads"]


@contextmanager
def limit_threads(n: int = 1) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``, restoring the previous count afterwards (also on errors).

    Args:
        n: Intra-op threads inside the block (>= 1).
    """
    if n < 1:
        raise ValueError(f"limit_threads needs n >= 1, got {n}")
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
