"""Learning-history datasets: what classical in-context learners did on training maps, for training transformers.

`generate(DataConfig())` plays a learner (within-trial Q-learning with exploration, or the explorer) for
``episodes_per_map`` episodes on each of ``n_maps`` maps from the training seed space of a suite's distribution,
records every transition, and arranges episodes into sequences. The trials are played by the protocol's runner
(`run_trials`, the one loop that evaluation and training rollouts use too: same seeds, resets, step limits and
demonstrations; a suite that changes the map inside a trial does so here as well, and `episode_map` says which
map each episode was played on; in the ``learning`` layout a trial's demonstrations, if its suite has them, are
its first episodes, as an agent sees them at play):

- ``layout="sets"`` (the paper's): per map, "sets" of 20-40 episodes sampled from that map's episodes and shuffled;
  each set is one sequence (the map never changes inside a sequence);
- ``layout="learning"`` (algorithm distillation): each map's episodes in the order the learner played them.

Quality (``sets`` only, as the paper defines it): ``high`` samples successful episodes 5x more often, ``low``
failed ones 5x more often, ``mid`` uniformly.

Training maps are drawn from the training seed space; a map that also occurs in an evaluation suite is skipped
(tiny maps collide now and then), and `Dataset.check_disjoint` proves the result disjoint - an overlap is an
error. Stored as one ``.npz`` (transition arrays, sequences as episode-id lists, and the metadata as JSON).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from icrl_bench.baselines import ExplorerAgent, QLearningAgent
from icrl_bench.envs.task import TaskSpec, Transition
from icrl_bench.protocol.agent import Agent, TrialInfo
from icrl_bench.protocol.runner import run_trials
from icrl_bench.protocol.suites import Suite, evaluation_map_ids, training_suite

LEARNERS = ("qlearning", "explorer", "mixed")
LAYOUTS = ("sets", "learning")
QUALITIES = ("low", "mid", "high")
FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "truncated")


class DatasetError(ValueError):
    """A dataset that cannot be made or used as asked; the message says why."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What to generate (defaults: the paper's 250 maps of the in-distribution suite).

    Args:
        n_maps: training maps. suite: whose distribution (`id`, `ood-large`, ...) the maps come from.
        learner: ``qlearning`` (with ``epsilon`` exploration), ``explorer``, or ``mixed`` (half of the maps each).
        episodes_per_map: episodes the learner plays on each map (one trial).
        layout, quality: see the module docstring. set_size: (low, high) episodes per set.
        seed: everything (maps, learners, sets) follows from it.
    """

    n_maps: int = 250
    suite: str = "id"
    learner: str = "qlearning"
    episodes_per_map: int = 60
    epsilon: float = 0.1
    layout: str = "sets"
    quality: str = "mid"
    set_size: tuple[int, int] = (20, 40)
    sets_per_map: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        for name, value, allowed in (("learner", self.learner, LEARNERS), ("layout", self.layout, LAYOUTS),
                                     ("quality", self.quality, QUALITIES)):  # fmt: skip
            if value not in allowed:
                raise DatasetError(f"{name} must be one of {allowed}, got {value!r}")
        if self.n_maps < 1 or self.episodes_per_map < 1 or self.sets_per_map < 1:
            raise DatasetError("n_maps, episodes_per_map and sets_per_map must be positive")
        lo, hi = self.set_size
        if not 1 <= lo <= hi:
            raise DatasetError(f"set_size must satisfy 1 <= low <= high, got {self.set_size}")
        object.__setattr__(self, "set_size", (int(lo), int(hi)))


@dataclasses.dataclass
class Dataset:
    """Transitions (one row per step, episodes contiguous) and sequences of episode ids."""

    transitions: dict[str, np.ndarray]  # FIELDS -> arrays of length n_steps
    episode_start: np.ndarray  # [n_episodes + 1]: episode e is rows episode_start[e]:episode_start[e+1]
    episode_map: np.ndarray  # [n_episodes]: index into `maps`
    maps: list[TaskSpec]
    sequences: list[np.ndarray]  # each an array of episode ids, in context order
    meta: dict[str, Any]

    @property
    def n_episodes(self) -> int:
        return len(self.episode_map)

    def episode(self, e: int) -> list[Transition]:
        """The transitions of episode `e`."""
        lo, hi = self.episode_start[e], self.episode_start[e + 1]
        t = self.transitions
        return [Transition(int(t["obs"][i]), int(t["action"][i]), float(t["reward"][i]), int(t["next_obs"][i]),
                           bool(t["terminated"][i]), bool(t["truncated"][i])) for i in range(lo, hi)]  # fmt: skip

    def success(self) -> np.ndarray:
        """1 for each episode that reached a goal."""
        return (np.add.reduceat(self.transitions["reward"], self.episode_start[:-1]) > 0).astype(np.int8)

    def check_disjoint(self) -> None:
        """Raise if any training map is also an evaluation map (by `map_id`)."""
        overlap = sorted({m.map_id for m in self.maps} & evaluation_map_ids())
        if overlap:
            raise DatasetError(f"{len(overlap)} training map(s) also occur in evaluation suites: {overlap[:5]}")

    def save(self, path: str | Path) -> None:
        """Write the dataset as one compressed .npz file."""
        lengths = np.array([len(s) for s in self.sequences], dtype=np.int64)
        np.savez_compressed(
            path,
            **{f"t_{k}": v for k, v in self.transitions.items()},
            episode_start=self.episode_start,
            episode_map=self.episode_map,
            sequence_lengths=lengths,
            sequence_episodes=np.concatenate(self.sequences) if self.sequences else np.zeros(0, np.int64),
            maps=np.array(json.dumps([m.to_dict() for m in self.maps])),
            meta=np.array(json.dumps(self.meta)),
        )

    @classmethod
    def load(cls, path: str | Path) -> Dataset:
        """Read a dataset written by `save`; a clear error for anything else."""
        try:
            with np.load(path) as z:
                lengths = z["sequence_lengths"]
                flat = z["sequence_episodes"]
                return cls(
                    transitions={k: z[f"t_{k}"] for k in FIELDS},
                    episode_start=z["episode_start"],
                    episode_map=z["episode_map"],
                    maps=[TaskSpec.from_dict(m) for m in json.loads(str(z["maps"]))],
                    sequences=np.split(flat, np.cumsum(lengths)[:-1]) if len(lengths) else [],
                    meta=json.loads(str(z["meta"])),
                )
        except (OSError, KeyError, ValueError) as e:
            raise DatasetError(f"{path} is not an icrl-bench dataset ({type(e).__name__}: {e}); regenerate it") from None


def _learner(kind: str, epsilon: float) -> Any:
    return ExplorerAgent() if kind == "explorer" else QLearningAgent(epsilon=epsilon)


class _Recorder(Agent):
    """A learner whose played episodes are kept, and the demonstrations it was shown before them (as episodes;
    one that ends in neither a hole nor a goal is closed as truncated, as `DQNAgent` closes it at play)."""

    def __init__(self, learner: Any) -> None:
        self.learner, self.episodes, self.demonstrations, self._episode = learner, [], [], []
        self._showing = False  # the open episode is a demonstration

    def begin_trial(self, info: TrialInfo) -> None:
        self.learner.begin_trial(info)

    def act(self, obs: int) -> int:
        if self._showing and self._episode:  # a demonstration left open
            self._close(self.demonstrations, truncate=True)
        self._showing = False
        return self.learner.act(obs)

    def observe(self, transition: Transition, demonstration: bool = False) -> None:
        self.learner.observe(transition, demonstration)
        self._showing = demonstration
        self._episode.append(transition)
        if transition.terminated or transition.truncated:
            self._close(self.demonstrations if demonstration else self.episodes)

    def _close(self, into: list[list[Transition]], truncate: bool = False) -> None:
        if truncate:
            self._episode[-1] = self._episode[-1]._replace(truncated=True)
        into.append(self._episode)
        self._episode = []


def _play(suite: Suite, trial: int, learner: Any, seed: int) -> tuple[list[list[Transition]], list[list[Transition]]]:
    """Trial `trial` of `suite`, played by `learner` through the protocol's runner: (the demonstrations it was
    shown, the episodes it played), as transitions."""
    recorder = _Recorder(learner)
    for _ in run_trials(recorder, suite, [trial], seed=seed):
        pass
    return recorder.demonstrations, recorder.episodes


def generate(config: DataConfig = DataConfig()) -> Dataset:
    """Play the learner on the training maps and arrange the episodes (see the module docstring)."""
    rng = np.random.default_rng(config.seed)
    banned = evaluation_map_ids()
    suite = training_suite(config.suite, config.n_maps * 2)  # spare trials for the few maps that collide
    suite = dataclasses.replace(suite, n_episodes=config.episodes_per_map)
    trials = [k for k in range(suite.n_trials) if all(t.map_id not in banned for t in suite.trial_tasks(k))]
    if len(trials) < config.n_maps:
        raise DatasetError(f"only {len(trials)} training trials avoid the evaluation maps; ask for fewer")
    trials = trials[: config.n_maps]
    episodes: list[list[Transition]] = []
    episode_map: list[int] = []
    maps: list[TaskSpec] = []
    sequences: list[np.ndarray] = []
    demonstration_episodes = 0
    for m, trial in enumerate(trials):
        kind = config.learner if config.learner != "mixed" else ("qlearning", "explorer")[m % 2]
        shown, played = _play(suite, trial, _learner(kind, config.epsilon), config.seed)
        if config.layout == "sets":  # sets are sampled from the learner's own episodes
            shown = []
        first = len(episodes)
        episodes += shown + played
        tasks = suite.trial_tasks(trial)  # several where the suite changes the map inside a trial
        episode_map += [len(maps)] * len(shown) + [len(maps) + suite.task_index(e) for e in range(len(played))]
        demonstration_episodes += len(shown)
        maps += tasks
        ids = np.arange(first, len(episodes))
        if config.layout == "learning":
            sequences.append(ids)
            continue
        played_on = np.array(episode_map[first:])  # this trial's episodes only (the list grows with every map)
        for part in np.unique(played_on):  # sets never mix the maps of a changing trial
            own = ids[played_on == part]
            won = np.array([episodes[e][-1].reward > 0 for e in own])
            weight = {"high": np.where(won, 5.0, 1.0), "low": np.where(won, 1.0, 5.0), "mid": np.ones(len(own))}[config.quality]
            for _ in range(config.sets_per_map):
                size = int(rng.integers(config.set_size[0], config.set_size[1] + 1))
                sequences.append(rng.choice(own, size=size, replace=True, p=weight / weight.sum()))
    flat = [t for ep in episodes for t in ep]
    transitions = {
        "obs": np.array([t.obs for t in flat], dtype=np.int16),
        "action": np.array([t.action for t in flat], dtype=np.int8),
        "reward": np.array([t.reward for t in flat], dtype=np.float32),
        "next_obs": np.array([t.next_obs for t in flat], dtype=np.int16),
        "terminated": np.array([t.terminated for t in flat], dtype=bool),
        "truncated": np.array([t.truncated for t in flat], dtype=bool),
    }
    starts = np.concatenate([[0], np.cumsum([len(ep) for ep in episodes])]).astype(np.int64)
    meta = json.loads(json.dumps({"config": dataclasses.asdict(config), "suite_hash": suite.hash, "n_steps": len(flat),
                                  "demonstration_episodes": demonstration_episodes}))  # fmt: skip
    dataset = Dataset(transitions, starts, np.array(episode_map, dtype=np.int32), maps, sequences, meta)
    dataset.check_disjoint()
    dataset.meta["success_rate"] = float(dataset.success().mean())
    return dataset
