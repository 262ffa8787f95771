"""`ExplorerAgent`: a model-based in-context learner, the strong classical reference.

It remembers, within a trial, every transition it has seen (its own and the demonstrations'): which tile each
action led to from each tile (walls show up as self-loops), and which tiles ended an episode as holes or goals.
Each step it plans by breadth-first search over that learned graph, never through a known hole:
1. to the nearest known goal, if one is reachable in the graph;
2. else to the nearest tile with an action it has not tried yet, and tries it (ties broken at random);
3. else (nothing left to learn) a random action.
It knows nothing of the grid (not even its width). It assumes a deterministic world: when a transition
contradicts what it learned (the map changed without a signal, or the ice is slippery), it forgets everything
and learns afresh.
"""

from __future__ import annotations

import random
from collections import deque

from icrl_bench.envs.task import Transition
from icrl_bench.protocol.agent import Agent, TrialInfo


class ExplorerAgent(Agent):
    """Plans to known goals, else to the nearest untried action (see the module docstring)."""

    def begin_trial(self, info: TrialInfo) -> None:
        self.rng = random.Random(info.seed)
        self.n_actions = info.n_actions
        self.model: dict[int, dict[int, int]] = {}  # tile -> action -> next tile (last seen)
        self.goals: set[int] = set()
        self.holes: set[int] = set()

    def observe(self, t: Transition, demonstration: bool = False) -> None:
        known = self.model.get(t.obs, {}).get(t.action)
        if known is not None and known != t.next_obs:
            # The world contradicts the model: the map changed (or slips). Start learning afresh.
            self.model, self.goals, self.holes = {}, set(), set()
        self.model.setdefault(t.obs, {})[t.action] = t.next_obs
        if t.terminated:
            (self.goals if t.reward > 0 else self.holes).add(t.next_obs)
            (self.holes if t.reward > 0 else self.goals).discard(t.next_obs)
        else:
            self.goals.discard(t.next_obs)
            self.holes.discard(t.next_obs)

    def act(self, obs: int) -> int:
        # Standing here means this tile does not end the episode (any more).
        self.goals.discard(obs)
        self.holes.discard(obs)
        # BFS from obs over known, safe edges; remember the first action of the path to each tile.
        first: dict[int, int | None] = {obs: None}
        queue = deque([obs])
        frontier: int | None = None
        while queue:
            s = queue.popleft()
            if s in self.goals:
                return first[s]  # type: ignore[return-value]
            edges = self.model.get(s, {})
            if frontier is None and len(edges) < self.n_actions:
                frontier = s
            for a in sorted(edges):
                n = edges[a]
                if n not in first and n not in self.holes:
                    first[n] = a if first[s] is None else first[s]
                    queue.append(n)
        if frontier is None:
            return self.rng.randrange(self.n_actions)
        if frontier != obs:
            return first[frontier]  # type: ignore[return-value]
        untried = [a for a in range(self.n_actions) if a not in self.model.get(obs, {})]
        return untried[self.rng.randrange(len(untried))]
