"""`miil demo` on embedded real data: the core's demo must reach its claim (held-out accuracy >= 0.95, above the
linear baseline), and the runner's summary table reports it."""

import re
import subprocess
import sys


def test_miil_demo_core_runs_and_passes():
    proc = subprocess.run(
        [sys.executable, "-m", "miil.core.cli", "demo", "core"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    row = next(x for x in proc.stdout.splitlines() if x.startswith("core "))
    assert row.split()[1] == "PASS", row
    cnn, linear = (float(v) for v in re.search(r"accuracy ([\d.]+) \(linear ([\d.]+)", row).groups())
    assert cnn >= 0.95 and cnn > linear, row
    assert "1 demos, 1 passed, 0 failed" in proc.stdout
