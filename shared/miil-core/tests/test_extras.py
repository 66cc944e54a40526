"""miil.core.extras: a module behind a package extra is imported, or its absence names the extra to install."""

import sys
from pathlib import Path

import pytest

from miil.core.cli import run_demos
from miil.core.data import embedded
from miil.core.errors import EXIT_USER_ERROR, MissingExtraError, UserError
from miil.core.extras import locate, require


def _require_json_decoder():
    with require("json", distribution="miil-x", extra="demo", purpose="the x demo"):
        from json import decoder
    return decoder


def test_require_passes_an_installed_module_through():
    assert _require_json_decoder().JSONDecoder is not None


def test_require_names_the_extra_when_the_package_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "json", None)  # what an uninstalled package looks like to `import`
    with pytest.raises(MissingExtraError) as info:
        _require_json_decoder()
    err = info.value
    assert isinstance(err, UserError) and isinstance(err, ImportError)
    assert (err.distribution, err.extra, err.module) == ("miil-x", "demo", "json")
    assert str(err) == "the x demo needs the 'demo' extra of miil-x (json is not installed): pip install 'miil-x[demo]'"


def test_require_names_the_extra_when_only_a_submodule_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "json.decoder", None)
    needs_json = require("json", distribution="miil-x", extra="demo", purpose="the x demo")
    with pytest.raises(MissingExtraError, match=r"pip install 'miil-x\[demo\]'"), needs_json:
        import json.decoder  # noqa: F401


def test_require_keeps_the_error_of_a_broken_installed_package():
    # The package is there but one of ITS imports fails: that is not a missing extra, and must not be reported as one.
    needs_json = require("json", distribution="miil-x", extra="demo", purpose="the x demo")
    with pytest.raises(ModuleNotFoundError) as info, needs_json:
        import miil_no_such_module_for_tests  # noqa: F401
    assert not isinstance(info.value, MissingExtraError)
    assert info.value.name == "miil_no_such_module_for_tests"


def test_locate_finds_a_package_folder_without_importing_it(monkeypatch):
    monkeypatch.delitem(sys.modules, "email", raising=False)
    folder = locate("email", distribution="miil-x", extra="demo", purpose="the x demo")
    assert isinstance(folder, Path) and (folder / "__init__.py").is_file()
    assert "email" not in sys.modules


def test_locate_names_the_extra_when_the_package_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "email", None)
    with pytest.raises(MissingExtraError, match=r"the x demo needs the 'demo' extra of miil-x \(email is not"):
        locate("email", distribution="miil-x", extra="demo", purpose="the x demo")


def _uninstall(monkeypatch, package: str) -> None:
    """Make ``package`` look uninstalled to the import system, also where a submodule was already imported."""
    for name in [m for m in list(sys.modules) if m.startswith(package + ".")] + [package]:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture
def no_sklearn(monkeypatch):
    """scikit-learn as if miil-core had been installed without its demo extra."""
    _uninstall(monkeypatch, "sklearn")
    embedded._all_digits.cache_clear()
    embedded._split_indices.cache_clear()
    yield
    embedded._all_digits.cache_clear()
    embedded._split_indices.cache_clear()


def test_embedded_digits_without_scikit_learn_name_the_core_demo_extra(no_sklearn):
    with pytest.raises(MissingExtraError, match=r"embedded digits .* pip install 'miil-core\[demo\]'"):
        embedded.load_digits_split("train")


def test_miil_demo_without_the_extra_says_which_extra_to_install(no_sklearn, capsys):
    assert run_demos(["core"]) == EXIT_USER_ERROR
    captured = capsys.readouterr()
    line = next(x for x in captured.out.splitlines() if x.startswith("core ") and "FAIL" in x)
    assert "'demo' extra of miil-core (sklearn is not installed): pip install 'miil-core[demo]'" in line
    assert "Traceback" not in captured.out + captured.err
