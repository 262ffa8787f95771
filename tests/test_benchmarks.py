"""Benchmark scripts stay runnable (their numbers are read by people, not asserted: machines are noisy)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_env_throughput_quick_run_prints_all_three_measurements():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "env_throughput.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3
    assert re.search(r"single env .* ratio +\d+\.\d+", lines[0])
    assert re.search(r"batched env .* ratio +\d+\.\d+", lines[1])
    assert re.search(r"map generator +[\d,]+ valid ID maps/s", lines[2])
