import os

# Rendering tests open pygame windows; never on a real display.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import pytest


@pytest.fixture(autouse=True)
def fast_human_rendering(monkeypatch):
    """Human-mode frames would sleep 1/render_fps seconds each; tests do not watch them."""
    from icrl_bench.envs import ICRLFrozenLakeEnv

    monkeypatch.setitem(ICRLFrozenLakeEnv.metadata, "render_fps", 10_000)
