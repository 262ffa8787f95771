import numpy as np
import pytest

from icrl_bench.envs import PAPER_STITCHING_TASK, draw_trajectories
from icrl_bench.envs.rendering import TRAJECTORY_COLOURS, render_ansi


def test_draw_trajectories_draws_each_path_and_writes_a_png(tmp_path):
    task = PAPER_STITCHING_TASK
    paths = [[t.obs for t in ep] + [ep[-1].next_obs] for ep in (task.rollout(d) for d in task.demonstrations)]
    out = tmp_path / "stitching.png"
    image = draw_trajectories(task, paths, path=out, cell=40)
    assert image.shape == (6 * 40, 4 * 40, 3)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for colour in TRAJECTORY_COLOURS[:2]:
        assert (image == np.array(colour, dtype=np.uint8)).all(axis=2).sum() > 50
    assert not (image == np.array(TRAJECTORY_COLOURS[2], dtype=np.uint8)).all(axis=2).any()


def test_draw_trajectories_rejects_tiles_off_the_map_and_empty_paths():
    with pytest.raises(ValueError, match="outside this 6x4 map"):
        draw_trajectories(PAPER_STITCHING_TASK, [[8, 9, 24]])
    with pytest.raises(ValueError, match="trajectory 0 is empty"):
        draw_trajectories(PAPER_STITCHING_TASK, [[]])


def test_ansi_shows_every_start_and_goal_and_the_last_action():
    text = render_ansi(PAPER_STITCHING_TASK, 9, last_action=2)
    assert text.startswith("  (Right)\n")
    assert "HHFF" in text and "HFGF" in text and "\x1b[41mF\x1b[0m" in text
