"""`miil demo` on embedded real data: the core's demo must reach its claim (held-out accuracy >= 0.95)."""

import subprocess
import sys


def test_miil_demo_core_runs_and_passes():
    proc = subprocess.run(
        [sys.executable, "-m", "miil.core.cli", "demo", "core"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("PASS"))
    accuracy = float(line.split("accuracy")[1].split()[0])
    assert accuracy >= 0.95
