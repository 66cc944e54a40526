"""miil.core.lazy: a package's public names are imported on first use, listed by dir(), and a function named like
its module survives the import of that module."""

import sys
import types

import pytest

from miil.core.lazy import lazy_exports


@pytest.fixture
def package(tmp_path, monkeypatch):
    root = tmp_path / "lazypkg"
    root.mkdir()
    (root / "__init__.py").write_text(
        "from miil.core.lazy import lazy_exports\n"
        "__getattr__, __dir__ = lazy_exports(__name__, {'helper': '.helper', 'VALUE': '.values'}, {'extra'},"
        " shadowed={'helper'})\n"
    )
    (root / "helper.py").write_text("def helper():\n    return 'called'\n")
    (root / "values.py").write_text("VALUE = 42\n")
    (root / "extra.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield __import__("lazypkg")
    for name in [m for m in sys.modules if m == "lazypkg" or m.startswith("lazypkg.")]:
        del sys.modules[name]


def test_names_load_on_first_use_and_stay(package):
    assert "lazypkg.values" not in sys.modules
    assert package.VALUE == 42 and "lazypkg.values" in sys.modules
    assert "VALUE" in vars(package)  # cached: the next access does not go through __getattr__
    assert {"helper", "VALUE", "extra"} <= set(dir(package))
    assert package.extra.X == 1
    with pytest.raises(AttributeError, match="has no attribute 'missing'"):
        package.missing  # noqa: B018


def test_a_function_named_like_its_module_is_kept(package):
    assert package.helper() == "called"
    import lazypkg.helper  # noqa: F401  (sets the package attribute to the module, unless shadowed)

    assert not isinstance(package.helper, types.ModuleType) and package.helper() == "called"


def test_it_imports_only_the_standard_library():
    import miil.core.lazy as lazy

    assert {"torch", "numpy"}.isdisjoint(n for n in vars(lazy) if isinstance(vars(lazy)[n], types.ModuleType))
    assert callable(lazy_exports)
