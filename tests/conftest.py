import os

# Rendering tests open pygame windows; never on a real display.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
# One thread per numeric thread pool (torch, MKL, OpenBLAS), here and in every subprocess and spawned worker the
# tests start, set before anything imports torch. The tests' models are tiny: intra-op threads buy nothing, and
# on a busy machine (2 cores, other processes, the tests' own workers) torch's spinning thread pool makes each
# forward pass many times slower: a shipped model's 20 trials took 2 minutes instead of 8 s. Explicitly set
# variables are kept (OMP_NUM_THREADS=2 pytest ...).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest


@pytest.fixture(autouse=True)
def fast_human_rendering(monkeypatch):
    """Human-mode frames would sleep 1/render_fps seconds each; tests do not watch them."""
    from icrl_bench.envs import ICRLFrozenLakeEnv

    monkeypatch.setitem(ICRLFrozenLakeEnv.metadata, "render_fps", 10_000)


@pytest.fixture
def chromium():
    """Debian's headless Chromium for the page tests: required in CI (`.ci/run` installs it), else skipped."""
    import shutil

    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (.ci/run does) for the browser tests")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def data_file(tmp_path_factory):
    """A tiny learning-history dataset (8 training maps) for the trainers' tests."""
    from icrl_bench.training.data import DataConfig, generate

    path = tmp_path_factory.mktemp("data") / "train.npz"
    generate(DataConfig(n_maps=8, episodes_per_map=12, seed=0, set_size=(4, 8))).save(path)
    return path
