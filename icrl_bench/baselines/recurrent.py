"""Play a recurrent policy trained on ``ICRLFrozenLakeTrial-v0`` (a trial as one episode) through the protocol.

`TrialPolicyAgent` rebuilds, from what the runner shows an agent, the observation the trial env gave the policy
in training (`icrl_bench.envs.trial`: one-hot tile, one-hot previous action, previous reward, inner-episode-ended
flag) and keeps the policy's recurrent state for the whole trial, resetting it only when a trial begins.
Demonstrations are not shown to it (the trial env gives them only in `info`) unless ``demonstrations=True``: then
each demonstration step is fed to the policy as if the policy had taken the demonstrated action (its own action
there is ignored), and the step after a demonstration's last one carries its reward and the episode-ended flag,
as after an inner episode of its own.

`sb3_recurrent` loads an sb3-contrib ``RecurrentPPO`` saved with ``model.save(path)``:

    icrl-bench evaluate icrl_bench.baselines.recurrent:sb3_recurrent --agent-arg path=ppo.zip
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from icrl_bench.envs.task import Transition
from icrl_bench.envs.trial import trial_observations
from icrl_bench.protocol.agent import Agent, TrialInfo

#: policy(observation [tiles + 6], state or None at a trial's start, trial_start) -> (action, state)
Policy = Callable[[np.ndarray, Any, bool], "tuple[int, Any]"]


class TrialPolicyAgent(Agent):
    """A policy of trial observations as a protocol agent (see the module docstring)."""

    def __init__(self, policy: Policy, tiles: int, demonstrations: bool = False) -> None:
        self.policy, self.tiles, self.demonstrations = policy, int(tiles), bool(demonstrations)

    def begin_trial(self, info: TrialInfo) -> None:
        if info.n_observations > self.tiles:
            raise ValueError(f"this policy reads {self.tiles} tiles but the suite's maps have {info.n_observations}: "
                             f"train it on a trial env made with tiles={info.n_observations} or more")  # fmt: skip
        self.state: Any = None
        self.previous: tuple[int, float, bool] | None = None  # (action, reward, ended) of the last step

    def act(self, obs: int) -> int:
        action, reward, ended = (-1, 0.0, False) if self.previous is None else self.previous
        x = trial_observations(self.tiles, np.array([int(obs)]), np.array([action]), np.array([reward]),
                               np.array([ended]))[0]  # fmt: skip
        action, self.state = self.policy(x, self.state, self.previous is None)
        return int(action)

    def observe(self, transition: Transition, demonstration: bool = False) -> None:
        if demonstration and not self.demonstrations:
            return
        if demonstration:  # the policy sees the demonstration's step as its own
            self.act(transition.obs)
        ended = transition.terminated or transition.truncated
        self.previous = (int(transition.action), float(transition.reward), bool(ended))


def sb3_recurrent(path: str, tiles: int | None = None, deterministic: bool = True) -> TrialPolicyAgent:
    """An sb3-contrib ``RecurrentPPO`` saved at `path` (needs ``pip install sb3-contrib``), greedy by default.
    `tiles`: the tile count it was trained with (default: read from its observation space)."""
    try:
        from sb3_contrib import RecurrentPPO
    except ImportError:
        raise ImportError("sb3_recurrent needs sb3-contrib: pip install sb3-contrib") from None
    model = RecurrentPPO.load(path, device="cpu")
    width = int(model.observation_space.shape[0]) - 6
    if tiles is not None and int(tiles) != width:
        raise ValueError(f"{path} reads {width} tiles, not {tiles}")

    def policy(x: np.ndarray, state: Any, start: bool) -> tuple[int, Any]:
        action, state = model.predict(x[None], state=state, episode_start=np.array([start]), deterministic=deterministic)
        return int(action[0]), state

    return TrialPolicyAgent(policy, width)
