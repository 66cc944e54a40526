"""Cross-package checks: layout of every distribution, the dependency rule, each package imported alone."""

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = sorted([*ROOT.glob("shared/miil-*"), *ROOT.glob("packages/miil-*")])
# The two package-to-package edges DESIGN.md allows; every package may use the core.
ALLOWED_EDGES = {("iqnas", "hardcore"), ("diversity", "usi")}


def _short(dist: str) -> str:
    return dist.removeprefix("miil-")


def _project(member: Path) -> dict:
    return tomllib.loads((member / "pyproject.toml").read_text())


def test_members_found():
    assert (ROOT / "shared" / "miil-core") in MEMBERS


@pytest.mark.parametrize("member", MEMBERS, ids=lambda p: p.name)
def test_member_layout(member):
    meta = _project(member)
    short = _short(meta["project"]["name"])
    assert member.name == f"miil-{short}"
    assert meta["build-system"]["build-backend"] == "uv_build"
    assert meta["tool"]["uv"]["build-backend"]["module-name"] == f"miil.{short}"
    assert (member / "src" / "miil" / short / "__init__.py").is_file()
    assert not (member / "src" / "miil" / "__init__.py").exists(), "miil must stay a PEP 420 namespace"
    assert (member / "README.md").is_file() and (member / "tests").is_dir()
    workspace = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # With its demo extra, so that `uv run miil demo` works from a fresh clone.
    dev = workspace["dependency-groups"]["dev"]
    assert f"{meta['project']['name']}[demo]" in dev, "add the member, with its demo extra, to the dev group"


def _allowed(short: str) -> set[str]:
    return {"core", short} | {dst for src, dst in ALLOWED_EDGES if src == short}


@pytest.mark.parametrize("member", MEMBERS, ids=lambda p: p.name)
def test_dependency_rule(member):
    meta = _project(member)
    short = _short(meta["project"]["name"])
    allowed = _allowed(short)
    requirements = meta["project"].get("dependencies", [])
    deps = [re.split(r"[\s;\[<>=~!]", d, maxsplit=1)[0] for d in requirements]
    bad_deps = [d for d in deps if d.startswith("miil-") and _short(d) not in allowed]
    # Members are released together: a compatible-release bound on each other (uv still takes them from the workspace).
    version = meta["project"]["version"]
    series = ".".join(version.split(".")[:2])
    for req in requirements:
        if req.startswith("miil-"):
            assert req.endswith(f"~={series}.0"), f"{member.name}: {req!r} needs the bound ~={series}.0"
    assert not bad_deps, f"{member.name} depends on {bad_deps}; packages may depend on miil-core only"
    if short == "core":
        assert not [d for d in deps if d.startswith("miil-")]
    for path in (member / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                if parts[0] == "miil" and len(parts) > 1:
                    assert parts[1] in allowed, f"{path.relative_to(ROOT)} imports {name}"
                    declared = parts[1] == short or f"miil-{parts[1]}" in deps
                    assert declared, f"{path.relative_to(ROOT)} imports {name}: declare miil-{parts[1]}"


@pytest.mark.parametrize("member", MEMBERS, ids=lambda p: p.name)
def test_package_imports_alone(member):
    short = _short(_project(member)["project"]["name"])
    code = (
        f"import sys, miil.{short}\n"
        "loaded = sorted({m.split('.')[1] for m in sys.modules if m.startswith('miil.') and m.count('.') >= 1})\n"
        "print(','.join(loaded))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = set(proc.stdout.strip().split(","))
    assert loaded <= _allowed(short), f"importing miil.{short} also imported {sorted(loaded - _allowed(short))}"
