"""The ``miil`` command stays light: ``miil --help`` and ``miil list`` read entry-point metadata only (no torch),
``import miil.<pkg>`` imports no torch, and ``miil <pkg> --help`` imports no other package."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(
    tomllib.loads((p / "pyproject.toml").read_text())["project"]["name"].removeprefix("miil-")
    for p in ROOT.glob("packages/miil-*")
)
# The package-to-package edges DESIGN.md allows (a package's CLI may load these).
ALLOWED_EDGES = {"iqnas": {"hardcore"}, "diversity": {"usi"}}

_RUN_MAIN = """
import json, sys
from miil.core.cli import main
try:
    status = main({argv!r})
except SystemExit as exc:
    status = exc.code
print(json.dumps({{"status": status, "torch": "torch" in sys.modules,
                  "miil": sorted({{m.split(".")[1] for m in sys.modules if m.startswith("miil.")}})}}))
"""


def _run_main(argv: list[str]) -> dict:
    import json

    code = _RUN_MAIN.format(argv=argv)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], ["list"], [], ["demo", "--help"], ["plot", "--help"], ["core", "--help"]])
def test_top_level_commands_import_no_torch(argv):
    result = _run_main(argv)
    assert result["status"] in (0, None), result
    assert not result["torch"], f"miil {' '.join(argv)} imported torch"
    assert set(result["miil"]) <= {"core"}, result["miil"]


@pytest.mark.parametrize("package", PACKAGES)
def test_import_package_imports_no_torch(package):
    code = f"import sys, miil.{package} as m; assert m.__all__; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False", f"import miil.{package} imported torch"


@pytest.mark.slow
@pytest.mark.parametrize("package", PACKAGES)
def test_package_help_loads_only_that_package(package):
    result = _run_main([package, "--help"])
    assert result["status"] == 0, result
    allowed = {"core", package} | ALLOWED_EDGES.get(package, set())
    assert set(result["miil"]) <= allowed, f"miil {package} --help loaded {sorted(set(result['miil']) - allowed)}"
