"""What the built wheels and sdists carry: LICENSE and NOTICE, py.typed, metadata, and honest dependency lists.

The distributions are built once per session with ``uv build --offline`` (uv's own ``uv_build`` backend, nothing
downloaded) into a temporary folder.
"""

import importlib.metadata
import os
import re
import shutil
import subprocess
import tarfile
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = sorted([*ROOT.glob("shared/miil-*"), *ROOT.glob("packages/miil-*")])
# Packages that only the demos (and tests) use: each must sit behind its distribution's `demo` extra.
DEMO_ONLY = {
    "miil-core": {"scikit-learn"},
    "miil-audio": {"pygame-ce", "espeakng-loader"},
    "miil-stam": {"scikit-video", "scikit-learn"},
    "miil-diversity": {"scikit-image"},
}


def _project(member: Path) -> dict:
    return tomllib.loads((member / "pyproject.toml").read_text())["project"]


def _stem(dist: str, version: str) -> str:
    return f"{dist.replace('-', '_')}-{version}"


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "building the distributions needs uv (run the tests with `uv run pytest`)"
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [uv, "build", "--all-packages", "--offline", "--no-progress", "-o", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _wheel(built: Path, member: Path) -> tuple[zipfile.ZipFile, str]:
    meta = _project(member)
    stem = _stem(meta["name"], meta["version"])
    return zipfile.ZipFile(built / f"{stem}-py3-none-any.whl"), stem


def _wheel_metadata(built: Path, member: Path):
    wheel, stem = _wheel(built, member)
    with wheel:
        return Parser().parsestr(wheel.read(f"{stem}.dist-info/METADATA").decode())


@pytest.mark.parametrize("member", MEMBERS, ids=lambda p: p.name)
def test_member_carries_the_root_license_and_notice(member):
    for name in ("LICENSE", "NOTICE"):
        assert (member / name).read_bytes() == (ROOT / name).read_bytes(), f"copy {name} to {member.name}/ again"
    assert _project(member)["license-files"] == ["LICENSE", "NOTICE"]


def test_license_is_mit_of_the_miil_authors():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "the miil authors" in text.splitlines()[2]
    notice = (ROOT / "NOTICE").read_text()
    for repo in ("ML_Decoder", "ASL", "PartialLabelingCSL", "Solving_ImageNet", "ImageNet21K", "STAM", "PETA"):
        assert f"https://github.com/Alibaba-MIIL/{repo}\n" in notice
    assert "https://github.com/huggingface/pytorch-image-models" in notice
    # Every repository entry names the commit it follows.
    assert len(re.findall(r"^  commit [0-9a-f]{40} \(\d{4}-\d\d-\d\d\)$", notice, flags=re.M)) >= 12


@pytest.mark.parametrize("member", MEMBERS, ids=lambda p: p.name)
def test_wheel_and_sdist_carry_license_notice_and_py_typed(built, member):
    meta = _project(member)
    short = meta["name"].removeprefix("miil-")
    wheel, stem = _wheel(built, member)
    with wheel:
        names = set(wheel.namelist())
    assert {f"{stem}.dist-info/licenses/LICENSE", f"{stem}.dist-info/licenses/NOTICE"} <= names
    assert f"miil/{short}/py.typed" in names
    assert not any(n.startswith("miil/__init__") for n in names), "miil must stay a PEP 420 namespace"
    with tarfile.open(built / f"{stem}.tar.gz") as sdist:
        members = set(sdist.getnames())
    assert {f"{stem}/LICENSE", f"{stem}/NOTICE", f"{stem}/src/miil/{short}/py.typed"} <= members


@pytest.mark.parametrize("member", MEMBERS, ids=lambda p: p.name)
def test_wheel_metadata(built, member):
    meta = _wheel_metadata(built, member)
    assert meta["License-Expression"] == "MIT"
    assert sorted(meta.get_all("License-File")) == ["LICENSE", "NOTICE"]
    classifiers = meta.get_all("Classifier")
    assert "Typing :: Typed" in classifiers and "Programming Language :: Python :: 3 :: Only" in classifiers
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert urls["Repository"] == "https://github.com/miil-project/miil"
    assert urls["Homepage"].endswith(f"/tree/main/{member.relative_to(ROOT).as_posix()}")
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().strip() == (member / "README.md").read_text().strip()


def _requirements(meta) -> tuple[set[str], set[str]]:
    """Names a plain install pulls, and names that only the ``demo`` extra adds."""
    plain, demo = set(), set()
    for line in meta.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            plain.add(req.name)
        elif req.marker.evaluate({"extra": "demo"}):
            demo.add(req.name)
    return plain, demo


def test_pip_install_miil_audio_pulls_no_pygame(built):
    plain, demo = _requirements(_wheel_metadata(built, ROOT / "packages" / "miil-audio"))
    assert "pygame-ce" not in plain and "espeakng-loader" not in plain
    assert {"pygame-ce", "espeakng-loader"} <= demo
    assert {"miil-core", "torch", "numpy", "soundfile", "librosa"} <= plain


@pytest.mark.parametrize("member", MEMBERS, ids=lambda p: p.name)
def test_demo_only_packages_sit_behind_the_demo_extra(built, member):
    meta = _wheel_metadata(built, member)
    plain, demo = _requirements(meta)
    assert "demo" in meta.get_all("Provides-Extra"), "every distribution offers `pip install 'miil-<name>[demo]'`"
    assert not plain & set().union(*DEMO_ONLY.values()), f"demo-only packages in a plain install: {plain}"
    assert DEMO_ONLY.get(meta["Name"], set()) <= demo
    if meta["Name"] != "miil-core" and meta["Name"] != "miil-audio":
        assert "miil-core" in demo, "the demo needs the core's embedded digits: list miil-core[demo]"


@pytest.mark.parametrize("member", MEMBERS, ids=lambda p: p.name)
def test_version_is_written_once(member):
    meta = _project(member)
    short = meta["name"].removeprefix("miil-")
    init = (member / "src" / "miil" / short / "__init__.py").read_text()
    assert f'__version__ = importlib.metadata.version("{meta["name"]}")' in init
    for path in (member / "src").rglob("*.py"):
        assert not re.search(r"^__version__\s*=\s*['\"]", path.read_text(), flags=re.M), f"{path}: read the metadata"
    assert importlib.metadata.version(meta["name"]) == meta["version"]


def test_version_attribute_reads_the_metadata():
    import miil.core

    written = _project(ROOT / "shared" / "miil-core")["version"]
    assert miil.core.__version__ == importlib.metadata.version("miil-core") == written
