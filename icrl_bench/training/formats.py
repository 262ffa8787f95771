"""Sequence formats: a trial (or a set of episodes) as model inputs plus its decision points.

The `compact` format, for small models trained from scratch, has one position per *transition* plus one at the
start of the sequence. Each position says what just happened and where the next action is chosen:

    position     prev_obs   action   reward   landed     done   obs (next decision)          episode
    start        NONE       NO_ACT   NO_REW   NONE       0      o_0                          0
    transition   o_t        a_t      r_t      o_{t+1}    end?   o_{t+1}, or the next         of the next
                                                                episode's start if it ended   decision

(NONE is ``n_obs``, one past the last tile.) A model reads positions 0..p and outputs Q-values for the action
to take in ``obs[p]``. Every position but the last is a *decision point*: the action taken there is
``action[p+1]``, its reward ``reward[p+1]``, and it ended the episode if ``done[p+1]``. Because every step adds
exactly one position, trials played side by side stay aligned, and an agent feeds one position per step.

TD targets bootstrap from position p+1:

- per-episode (the paper): unless the action ended the episode (then ``y = r`` alone; truncation counts as an
  end, as in the paper);
- cross-episode (RL^2-style, the paper's proposed remedy): also through an episode's end, where position p+1
  is the next episode's first decision, so that exploring now is paid by success later; only the sequence's
  last action has ``y = r`` alone (unless the sequence was cut inside an episode: its last episode may
  lack its end).

`td_targets` is the reference (numpy) of the double-DQN target that the trainer computes with torch.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from icrl_bench.envs.task import Transition

NO_ACTION = 4  # action field of the start position (actions are 0..3)
NO_REWARD = 2  # reward field of the start position (rewards are 0 or 1)


@dataclasses.dataclass
class CompactSequence:
    """Inputs (one entry per position) and decision-point annotations of one sequence."""

    prev_obs: np.ndarray  # int; n_obs at the start position
    action: np.ndarray  # int; NO_ACTION at the start position
    reward: np.ndarray  # int 0/1; NO_REWARD at the start position
    landed: np.ndarray  # int: where the transition led; n_obs at the start position
    done: np.ndarray  # int 0/1: the transition ended its episode
    obs: np.ndarray  # int: the observation the next action is chosen in
    episode: np.ndarray  # int: episode index of that next decision
    decision: np.ndarray  # bool: an action was taken here (every position but the last)
    taken: np.ndarray  # int: that action (-1 where no decision)
    gained: np.ndarray  # float: its reward (0 where no decision)
    ends_episode: np.ndarray  # bool: that action ended the episode
    next_in_episode: np.ndarray  # int: bootstrap position, per-episode objective (-1: none)
    next_across: np.ndarray  # int: bootstrap position, cross-episode objective (-1: none)

    def __len__(self) -> int:
        return len(self.obs)


def position_rows(transitions: Sequence[Transition], n_obs: int, first_obs: int | None, next_obs: int | None,
                  episode: int) -> tuple[list[tuple[int, ...]], int]:  # fmt: skip
    """Positions (tuples in `FIELD_ORDER`) of consecutive transitions, and the episode index after them.

    `first_obs`: add the start position (the sequence's first observation) first. `next_obs`: the observation of
    the decision after the last transition, when that transition ended an episode (the next start); ``None``
    keeps the landing tile there (the end of a sequence). The agent and `compact_sequence` share this.
    """
    rows: list[tuple[int, ...]] = []
    if first_obs is not None:
        rows.append((n_obs, NO_ACTION, NO_REWARD, n_obs, 0, int(first_obs), episode))
    for k, t in enumerate(transitions):
        done = bool(t.terminated or t.truncated)
        if done:
            episode += 1
            following = transitions[k + 1].obs if k + 1 < len(transitions) else next_obs
            at = t.next_obs if following is None else following
        else:
            at = t.next_obs
        rows.append((t.obs, t.action, int(t.reward > 0), t.next_obs, int(done), int(at), episode))
    return rows, episode


FIELD_ORDER = ("prev_obs", "action", "reward", "landed", "done", "obs", "episode")


def compact_sequence(episodes: Sequence[Sequence[Transition]], n_obs: int) -> CompactSequence:
    """The compact format of consecutive episodes (see the module docstring)."""
    flat: list[Transition] = []
    for e, episode in enumerate(episodes):
        if not episode:
            raise ValueError(f"episode {e} has no transitions")
        for k, t in enumerate(episode):
            if k and t.obs != episode[k - 1].next_obs:
                raise ValueError(f"episode {e}, step {k}: observation {t.obs} does not follow the previous step")
            if k < len(episode) - 1 and (t.terminated or t.truncated):
                raise ValueError(f"episode {e}, step {k}: the episode ends before its last transition")
        if e < len(episodes) - 1 and not (episode[-1].terminated or episode[-1].truncated):
            raise ValueError(f"episode {e} does not end, but another follows it")
        flat += episode
    rows, _ = position_rows(flat, n_obs, flat[0].obs, None, 0)
    cols = np.array(rows, dtype=np.int64).T
    n = cols.shape[1]
    idx = np.arange(n)
    decision = idx < n - 1
    taken = np.append(cols[1][1:], -1)
    gained = np.append(cols[2][1:], 0).astype(np.float64)
    ends = np.append(cols[4][1:] == 1, False)
    next_in = np.where(decision & ~ends, idx + 1, -1)
    # The sequence's last action bootstraps only if its episode goes on beyond the sequence (a cut trial).
    next_across = np.where((idx + 1 < n - 1) | (decision & ~ends), idx + 1, -1)
    return CompactSequence(*cols, decision, taken, gained, ends, next_in, next_across)


def td_targets(
    seq: CompactSequence,
    q_online: np.ndarray,
    q_target: np.ndarray,
    gamma: float = 0.9,
    reward_scale: float = 30.0,
    cross_episode: bool = False,
) -> np.ndarray:
    """Double-DQN targets at the decision points (NaN elsewhere).

    ``y = scale * r + gamma * Q_target(next, argmax_a Q_online(next, a))``, the argmax over the four actions only,
    or ``y = scale * r`` where the objective does not bootstrap. ``q_*`` are ``[positions, 4]`` arrays.
    """
    nxt = seq.next_across if cross_episode else seq.next_in_episode
    y = np.full(len(seq), np.nan)
    for p in np.flatnonzero(seq.decision):
        y[p] = reward_scale * seq.gained[p]
        if nxt[p] >= 0:
            best = int(np.argmax(q_online[nxt[p], :4]))
            y[p] += gamma * q_target[nxt[p], best]
    return y


@dataclasses.dataclass(frozen=True)
class Relabeling:
    """Symbols, not places: one trial's random relabeling, so a network must learn from its context what each
    symbol means instead of memorising tile priors (and can play maps with tile numbers it never saw).

    Tile ``t`` is shown as ``symbols[t]`` (a random injection into ``n`` symbols); env action ``a`` is shown,
    and scored, as ``actions[a]`` (a random permutation of the four). Training draws one per sampled sequence
    (a fresh one each time it is sampled); an agent draws one per trial from its `TrialInfo.seed`.
    """

    symbols: np.ndarray
    actions: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int) -> Relabeling:
        return cls(rng.permutation(n), rng.permutation(4))

    @classmethod
    def for_trial(cls, seed: int, n: int) -> Relabeling:
        """The agent's relabeling of a trial (a stream of its own, apart from the agent's exploration draws)."""
        return cls.draw(np.random.default_rng([seed, 0x5E1AB]), n)

    def trial(self, array: np.ndarray) -> np.ndarray:
        """A `trial_array` relabeled (obs, action, next_obs, and the label column where there is one)."""
        out = array.copy()
        out[:, 0], out[:, 3] = self.symbols[array[:, 0]], self.symbols[array[:, 3]]
        out[:, 1] = self.actions[array[:, 1]]
        if array.shape[1] > 6:
            out[:, 6] = np.where(array[:, 6] >= 0, self.actions[np.maximum(array[:, 6], 0)], array[:, 6])
        return out

    def transition(self, t: Transition) -> Transition:
        return Transition(int(self.symbols[t.obs]), int(self.actions[t.action]), t.reward, int(self.symbols[t.next_obs]),
                          t.terminated, t.truncated)  # fmt: skip

    def env_action(self, shown: int) -> int:
        """The env action of a shown (network) action."""
        return int(np.flatnonzero(self.actions == shown)[0])
