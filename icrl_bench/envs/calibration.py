"""Calibration of a registered environment: exact random-policy and optimal success, mean shortest path.

What `icrl-bench envs --calibrate N` prints and the README's environment table shows (exact per-map
probabilities by dynamic programming, averaged over N maps drawn from a seed no evaluation suite uses).
"""

from __future__ import annotations

import numpy as np

from icrl_bench.envs.dynamics import optimal_success_probability, random_success_probability
from icrl_bench.envs.frozen_lake import make_source
from icrl_bench.envs.registration import source_kwargs

# Seeds for the calibration maps: far from anything an evaluation suite will use.
CALIBRATION_SEED = 20_251_125


def calibrate(env_id: str, n_maps: int, seed: int = CALIBRATION_SEED) -> dict[str, float]:
    """Exact random-policy and optimal success per episode, and mean shortest path, over `n_maps` maps of `env_id`."""
    source = make_source(**source_kwargs(env_id))
    rng = np.random.default_rng(seed)
    tasks = [source.sample(rng) for _ in range(n_maps)]
    return {
        "random": float(np.mean([random_success_probability(t) for t in tasks])),
        "optimal": float(np.mean([optimal_success_probability(t) for t in tasks])),
        "shortest_path": float(np.mean([d for t in tasks for d in t.start_distances])),
    }
