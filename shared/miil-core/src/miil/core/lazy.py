"""Lazy package attributes (PEP 562), shared by miil-core and every miil package's ``__init__``.

``import miil.<pkg>`` must stay cheap (``miil --help`` and ``miil <pkg> --help`` import no torch), while
``from miil.<pkg> import X`` keeps working for every public name. A package lists its public names and the module
each lives in; :func:`lazy_exports` returns the module's ``__getattr__`` and ``__dir__``, which import a module on
first use of one of its names and cache the name in the package. Imports only the standard library.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


class _ShadowingPackage(types.ModuleType):
    # A function named like its own module (``zsl_metrics`` in ``zsl_metrics.py``): importing that module sets the
    # package attribute to the module; the function must stay, as an eager ``from .x import x`` left it.
    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__.get("_lazy_shadowed", ()) and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


def lazy_exports(
    package: str,
    exports: Mapping[str, str],
    submodules: Iterable[str] = (),
    shadowed: Iterable[str] = (),
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package whose public names are imported on first use.

    Args:
        package: The package's ``__name__``.
        exports: Public name -> the relative module that defines it (``{"MLDecoder": ".ml_decoder"}``).
        submodules: Modules that an eager ``import miil.<pkg>`` used to load, so ``miil.<pkg>.<module>`` keeps
            working without an explicit import.
        shadowed: Public functions named like their module (kept when that module is imported).

    Returns:
        ``(__getattr__, __dir__)``; assign them at the package's top level.
    """
    submodules = frozenset(submodules)
    shadowed = frozenset(shadowed)
    if shadowed:
        module = sys.modules[package]
        module._lazy_shadowed = shadowed
        module.__class__ = _ShadowingPackage

    def __getattr__(name: str) -> Any:
        where = exports.get(name)
        if where is None:
            if name in submodules:
                return importlib.import_module(f".{name}", package)
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports) | submodules)

    return __getattr__, __dir__
