"""Drawing maps: text (`ansi`), pygame frames (`rgb_array`, `human`) and trajectory figures.

Frames have a fixed size for an environment - the largest map of its task source - so that videos of a
trial whose maps differ in size still have one frame size; the current map is drawn in the top-left corner.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from icrl_bench.envs.task import ACTION_NAMES, TaskSpec

CELL = 64
_COLOURS = {
    "F": (214, 236, 250),
    "S": (214, 236, 250),
    "H": (24, 52, 92),
    "G": (250, 214, 90),
    "background": (40, 40, 40),
    "grid": (150, 175, 205),
    "agent": (200, 40, 40),
    "text": (20, 30, 70),
}
TRAJECTORY_COLOURS = ((148, 0, 211), (230, 110, 0), (0, 140, 70), (0, 90, 200), (200, 0, 120))


def render_ansi(task: TaskSpec, position: int | None, last_action: int | None = None) -> str:
    """The map as text, the agent's tile highlighted, with the last action on top (like FrozenLake-v1)."""
    from gymnasium import utils

    header = f"  ({ACTION_NAMES[last_action].capitalize()})\n" if last_action is not None else "\n"
    rows = [list(r) for r in task.rows]
    if position is not None:
        r, c = divmod(position, task.ncol)
        rows[r][c] = utils.colorize(rows[r][c], "red", highlight=True)
    return header + "\n".join("".join(r) for r in rows) + "\n"


def _pygame():
    try:
        import pygame
    except ImportError as e:  # pragma: no cover - pygame is a core dependency
        raise ImportError("rendering needs pygame: pip install pygame") from e
    return pygame


def _paint_map(surface, task: TaskSpec, cell: int) -> None:
    pygame = _pygame()
    if not pygame.font.get_init():
        pygame.font.init()
    font = pygame.font.Font(None, max(12, cell // 2))
    for r, row in enumerate(task.rows):
        for c, tile in enumerate(row):
            rect = pygame.Rect(c * cell, r * cell, cell, cell)
            pygame.draw.rect(surface, _COLOURS[tile], rect)
            pygame.draw.rect(surface, _COLOURS["grid"], rect, 1)
            if tile in "SG":
                label = font.render(tile, True, _COLOURS["text"])
                surface.blit(label, label.get_rect(center=rect.center))


def _tile_centre(task: TaskSpec, tile: int, cell: int) -> tuple[int, int]:
    r, c = divmod(tile, task.ncol)
    return c * cell + cell // 2, r * cell + cell // 2


class MapPainter:
    """A pygame canvas of fixed size (`max_height` x `max_width` cells) for `rgb_array` or `human` rendering."""

    def __init__(self, max_height: int, max_width: int, mode: str, fps: int = 4, cell: int = CELL) -> None:
        pygame = _pygame()
        self.mode, self.fps, self.cell = mode, fps, cell
        size = (max_width * cell, max_height * cell)
        if mode == "human":
            pygame.display.init()
            pygame.display.set_caption("icrl-bench Frozen Lake")
            self.surface = pygame.display.set_mode(size)
            self.clock = pygame.time.Clock()
        else:
            self.surface = pygame.Surface(size)

    def draw(self, task: TaskSpec, position: int) -> np.ndarray | None:
        """Draw `task` with the agent at `position`; an RGB array in `rgb_array` mode."""
        pygame = _pygame()
        self.surface.fill(_COLOURS["background"])
        _paint_map(self.surface, task, self.cell)
        if task.tile(position) != "H":
            pygame.draw.circle(self.surface, _COLOURS["agent"], _tile_centre(task, position, self.cell), self.cell // 4)
        if self.mode == "human":
            pygame.event.pump()
            pygame.display.update()
            self.clock.tick(self.fps)
            return None
        return np.transpose(np.array(pygame.surfarray.pixels3d(self.surface)), axes=(1, 0, 2))

    def close(self) -> None:
        if self.mode == "human":
            pygame = _pygame()
            pygame.display.quit()


def draw_trajectories(
    task: TaskSpec, trajectories: Sequence[Sequence[int]], path: str | os.PathLike | None = None, cell: int = CELL
) -> np.ndarray:
    """Draw `task` with each trajectory (a sequence of tile indices) as a coloured line with arrow heads.

    Returns the image as an ``(height, width, 3)`` uint8 array and writes a PNG to `path` if given. Lines are
    offset a little per trajectory so overlapping paths stay visible (as in the paper's figures).
    """
    pygame = _pygame()
    surface = pygame.Surface((task.ncol * cell, task.nrow * cell))
    _paint_map(surface, task, cell)
    for k, tiles in enumerate(trajectories):
        if len(tiles) == 0:
            raise ValueError(f"trajectory {k} is empty: give at least one tile")
        for t in tiles:
            if not 0 <= t < task.n_tiles:
                raise ValueError(f"trajectory {k} visits tile {t}, outside this {task.nrow}x{task.ncol} map")
        colour = TRAJECTORY_COLOURS[k % len(TRAJECTORY_COLOURS)]
        shift = (k - (len(trajectories) - 1) / 2) * cell * 0.12
        points = [(x + shift, y + shift) for x, y in (_tile_centre(task, t, cell) for t in tiles)]
        if len(points) == 1:
            pygame.draw.circle(surface, colour, points[0], cell // 8)
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            if (x0, y0) == (x1, y1):  # bumped into a wall: mark the spot
                pygame.draw.circle(surface, colour, (x0, y0), cell // 10, 2)
                continue
            pygame.draw.line(surface, colour, (x0, y0), (x1, y1), 3)
            dx, dy = x1 - x0, y1 - y0
            norm = (dx * dx + dy * dy) ** 0.5
            ux, uy = dx / norm, dy / norm
            size = cell * 0.15
            tip = (x1 - ux * cell * 0.2, y1 - uy * cell * 0.2)
            left = (tip[0] - ux * size - uy * size * 0.6, tip[1] - uy * size + ux * size * 0.6)
            right = (tip[0] - ux * size + uy * size * 0.6, tip[1] - uy * size - ux * size * 0.6)
            pygame.draw.polygon(surface, colour, [tip, left, right])
        pygame.draw.circle(surface, colour, points[0], cell // 10)
    if path is not None:
        pygame.image.save(surface, os.fspath(path))
    return np.transpose(np.array(pygame.surfarray.pixels3d(surface)), axes=(1, 0, 2))
