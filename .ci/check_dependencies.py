"""Run deptry on every workspace member, each against its own pyproject.toml, with the root's [tool.deptry] settings.

deptry reads the declared dependencies from the file its ``--config`` names, so one run per member is needed; the
settings they share live once in the root pyproject.toml and are passed on as command-line options.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _options(settings: dict) -> list[str]:
    args = []
    for key, value in settings.items():
        if key == "known_first_party":
            for module in value:
                args += ["--known-first-party", module]
        elif key == "per_rule_ignores":
            args += ["--per-rule-ignores", ",".join(f"{rule}={'|'.join(names)}" for rule, names in value.items())]
        else:
            raise SystemExit(f"{ROOT / 'pyproject.toml'}: [tool.deptry] {key} is not passed on by {__file__}")
    return args


def main() -> int:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["deptry"]
    members = sorted([*ROOT.glob("shared/miil-*"), *ROOT.glob("packages/miil-*")])
    failed = []
    for member in members:
        print(f"== deptry {member.relative_to(ROOT)}", flush=True)
        cmd = [sys.executable, "-m", "deptry", "src", "--config", "pyproject.toml", "--no-ansi", *_options(settings)]
        if subprocess.run(cmd, cwd=member).returncode != 0:
            failed.append(member.name)
    if failed:
        print(f"deptry found undeclared or unused dependencies in: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"deptry: {len(members)} members clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
