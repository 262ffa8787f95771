"""Sequence formats: a trial (or a set of episodes) as model inputs plus its decision points.

The `compact` format, for small models trained from scratch, has one position per *transition* and one per
episode start:

    position     prev_obs   action   reward   obs        done
    reset        NONE_OBS   NO_ACT   NO_REW   o_0        0
    transition   o_t        a_t      r_t      o_{t+1}    1 if the episode ended there

A model reads positions 0..p and outputs Q-values for the action to take in ``obs[p]``. Position p is a
*decision point* when an action was actually taken there: every position of an episode except its last.
For each decision point the format records the action taken (``action[p+1]``), its reward, whether it ended
the episode, and where its TD target bootstraps from:

- per-episode (the paper): from p+1 unless the action ended the episode (then ``y = r`` alone);
- cross-episode (RL^2-style, the paper's proposed remedy): also through an episode's end, from the next
  episode's start position, so that exploring now is paid by success later; only the last action of the
  sequence has ``y = r`` alone.

`td_targets` is the reference (numpy) of the double-DQN target that the trainer computes with torch.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from icrl_bench.envs.task import Transition

NO_ACTION = 4  # action field of a reset position (actions are 0..3)
NO_REWARD = 2  # reward field of a reset position (rewards are 0 or 1)


@dataclasses.dataclass
class CompactSequence:
    """Inputs (one entry per position) and decision-point annotations of one sequence."""

    prev_obs: np.ndarray  # int; n_obs (one past the last tile) at reset positions
    action: np.ndarray  # int; NO_ACTION at reset positions
    reward: np.ndarray  # int 0/1; NO_REWARD at reset positions
    obs: np.ndarray  # int: the observation the next action is chosen in
    done: np.ndarray  # int 0/1: the episode ended at this position
    episode: np.ndarray  # int: episode index within the sequence
    decision: np.ndarray  # bool: an action was taken here
    taken: np.ndarray  # int: that action (-1 where no decision)
    gained: np.ndarray  # float: its reward (0 where no decision)
    ends_episode: np.ndarray  # bool: that action ended the episode
    next_in_episode: np.ndarray  # int: bootstrap position, per-episode objective (-1: none)
    next_across: np.ndarray  # int: bootstrap position, cross-episode objective (-1: none)

    def __len__(self) -> int:
        return len(self.obs)


def compact_sequence(episodes: Sequence[Sequence[Transition]], n_obs: int) -> CompactSequence:
    """The compact format of consecutive episodes (see the module docstring)."""
    rows: list[tuple[int, int, int, int, int, int]] = []
    starts = []
    for e, episode in enumerate(episodes):
        if not episode:
            raise ValueError(f"episode {e} has no transitions")
        starts.append(len(rows))
        rows.append((n_obs, NO_ACTION, NO_REWARD, episode[0].obs, 0, e))
        for k, t in enumerate(episode):
            if t.obs != (episode[k - 1].next_obs if k else episode[0].obs):
                raise ValueError(f"episode {e}, step {k}: observation {t.obs} does not follow the previous step")
            rows.append((t.obs, t.action, int(t.reward > 0), t.next_obs, int(t.terminated or t.truncated), e))
    cols = np.array(rows, dtype=np.int64).T
    n = cols.shape[1]
    decision = np.zeros(n, dtype=bool)
    decision[:-1] = cols[5][1:] == cols[5][:-1]  # the next position belongs to the same episode
    taken = np.where(decision, np.append(cols[1][1:], -1), -1)
    gained = np.where(decision, np.append(cols[2][1:], 0), 0).astype(np.float64)
    ends = decision & np.append(cols[4][1:] == 1, False)
    idx = np.arange(n)
    next_in = np.where(decision & ~ends, idx + 1, -1)
    next_start = np.full(n, -1)
    for e in range(len(episodes) - 1):
        next_start[cols[5] == e] = starts[e + 1]
    next_across = np.where(decision & ~ends, idx + 1, np.where(ends, next_start, -1))
    return CompactSequence(cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], decision, taken, gained, ends,
                           next_in, next_across)  # fmt: skip


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
