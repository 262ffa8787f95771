"""Benchmark scripts stay runnable (their numbers are read by people, not asserted: machines are noisy)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_env_throughput_quick_run_prints_every_measurement():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "env_throughput.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 6
    assert re.search(r"single env .* ratio +\d+\.\d+", lines[0])
    assert re.search(r"batched env .* ratio +\d+\.\d+", lines[1])
    assert re.search(r"map generator +[\d,]+ valid ID maps/s as arrays", lines[2])
    assert re.search(r"^ +[\d,]+ valid ID maps/s as TaskSpec objects", lines[3])
    assert re.search(r"reset\(seed=0\) of 512 sub-envs +\d+ ms, of which seeding .* +\d+ ms", lines[4])
    assert re.search(r"task switching episodes_per_task=1 +[\d,]+ steps/s .* ratio +\d+\.\d+", lines[5])


def test_llm_dqn_step_tiny_run_prints_the_three_ratios():
    import os

    import pytest

    pytest.importorskip("peft")
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "llm_dqn_step.py"), "--tiny", "--tokens", "256", "--repeats", "1",
         "--episode", "10", "--trials", "8", "--steps", "3"],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for label in ("lean / naive update", "KV cache / re-encode", "batched / one at a time"):
        assert re.search(rf"{re.escape(label)} +\d+\.\d+x +\(target >= [\d.]+x.*\) +(PASS|FAIL)", result.stdout), label
    assert re.search(r"naive \(full-vocabulary logits\) +\d+\.\d+ +[\d,]+ +-?\d+\.\d", result.stdout)
    assert re.search(r"top 1 layers vs adapters in every layer \(same run\): \d+\.\d+x .* \d+\.\d+x", result.stdout)


def test_llm_precision_tiny_run_compares_each_precision_with_fp32():
    import os

    import pytest

    pytest.importorskip("peft")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "llm_precision.py"), "--tiny", "--trials", "2"],
                            check=False, capture_output=True, text=True, timeout=300,
                            env=os.environ | {"OMP_NUM_THREADS": "1"})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^fp32 +1\.0000 +0\.0000", result.stdout, re.M)
    for precision in ("bf16-autocast", "bf16"):
        assert re.search(rf"^{precision} +[01]\.\d{{4}} +\d+\.\d{{4}}", result.stdout, re.M), precision


def test_llm_gpu_step_dry_run_takes_one_finite_update_on_the_cpu():
    import os

    import pytest

    pytest.importorskip("peft")
    result = subprocess.run(  # as a module from the repository root, as tests/test_llm.py's gpu test imports it
        [sys.executable, "-m", "benchmarks.llm_gpu_step", "--dry-run"],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=os.environ | {"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "gradient checkpointing on" in result.stdout
    assert re.search(r"one DQN update of 10 x 64 tokens: \d+\.\d+ s, [\d,]+ tokens/s, peak \d+\.\d+ GiB", result.stdout)
    assert "finite: True" in result.stdout
    assert re.search(r"\d+\.\d+ s per paper update, \d+\.\d+ h per epoch", result.stdout)


def test_llm_long_context_tiny_run_compares_the_two_caches_and_finds_the_same_q():
    import os

    import pytest

    pytest.importorskip("peft")
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "llm_long_context.py"), "--tiny", "--trials", "3", "--context",
         "300", "--steps", "2"],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for label in ("default (DynamicCache + sdpa)", "ours (GrowingLayer + grouped)"):
        assert re.search(rf"{re.escape(label)} +\d+\.\d+ ms/step +\d+\.\d+ decisions/s", result.stdout), label
    gap = re.search(r"ratio \d+\.\d+x \(largest Q difference ([^)]+)\)", result.stdout)
    assert gap and float(gap.group(1)) < 1e-4
