import gymnasium as gym
import pytest

import icrl_bench  # noqa: F401
from icrl_bench.envs import PAPER_STITCHING_TASK, StitchingGenerator, TaskSpec


def test_paper_task_demonstrations():
    task = PAPER_STITCHING_TASK
    assert task.starts == (8,) and task.goals == (22,) and task.start_distances == (5,)
    success, failure = (task.rollout(d) for d in task.demonstrations)
    assert [t.next_obs for t in success] == [6, 10, 14, 18, 22] and success[-1].reward == 1.0
    assert [t.next_obs for t in failure] == [9, 10, 11] and failure[-1].terminated and failure[-1].reward == 0.0


def test_paper_env_hands_out_demonstrations_at_trial_start_only():
    env = gym.make("ICRLFrozenLakeStitchingPaper-v0")
    obs, info = env.reset(seed=0)
    assert obs == 8 and len(info["demonstrations"]) == 2
    assert "demonstrations" not in env.reset()[1]
    # right, right, down x3: the stitched path of the paper.
    for a in (2, 2, 1, 1):
        assert env.step(a)[1:3] == (0.0, False)
    assert env.step(1)[:3] == (22, 1.0, True)


def walk(task, start, actions):
    tiles = [start]
    for a in actions:
        tiles.append(task.move(tiles[-1], task.direction(a)))
    return tiles


@pytest.mark.parametrize("seed", range(40))
def test_generated_tasks_need_stitching(seed):
    task = StitchingGenerator().sample(seed)
    assert isinstance(task, TaskSpec) and len(task.starts) == 1 and len(task.demonstrations) == 2
    (start,) = task.starts
    a, b = task.demonstrations
    a_tiles, b_tiles = walk(task, a.start, a.actions), walk(task, b.start, b.actions)
    # B starts at S and falls into a hole without touching a goal; A never starts at or passes through S.
    assert b.start == start and task.tile(b_tiles[-1]) == "H" and all(task.tile(t) != "G" for t in b_tiles)
    assert start not in a_tiles and task.tile(a_tiles[-1]) == "G"
    # They cross, and B's prefix up to a crossing followed by A's suffix from it reaches a goal.
    crossings = [t for t in b_tiles if t in a_tiles and task.tile(t) == "F"]
    assert crossings
    x = crossings[0]
    stitched = b.actions[: b_tiles.index(x)] + a.actions[a_tiles.index(x) :]
    rollout = task.rollout(type(a)(start, stitched))
    assert rollout[-1].reward == 1.0
    assert len(stitched) >= StitchingGenerator().min_hops


def test_stitching_generator_is_deterministic():
    gen = StitchingGenerator()
    assert gen.sample_many(5, 3) == gen.sample_many(5, 3) != gen.sample_many(5, 4)


def test_small_step_limits_redraw_instead_of_failing():
    gen = StitchingGenerator(max_steps=12)
    for task in gen.sample_many(60, 0):
        assert all(len(d.actions) <= 12 for d in task.demonstrations)
    gym.make("ICRLFrozenLakeStitching-v0", max_steps=12).reset(seed=92)
    with pytest.raises(ValueError, match="at least min_hops"):
        StitchingGenerator(max_steps=3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"p_hole": "0.2"}, r"p_hole must be a number in \[0, 1\]"),
        ({"p_hole": 0.0}, "above 0 and below 1"),
        ({"p_hole": 1.0}, "above 0 and below 1"),
        ({"min_hops": 36}, "largest feasible min_hops is 35"),
        ({"min_hops": "4"}, "min_hops must be a positive integer"),
        ({"max_steps": 12.0}, "max_steps must be a positive integer"),
        ({"height": (4, 33)}, "at most 32 rows and columns"),
        ({"height": (1, 1), "width": (1, 5)}, "at least 6 tiles"),
    ],
)
def test_bad_stitching_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StitchingGenerator(**kwargs)
