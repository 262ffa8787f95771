"""`draw_curves`: success per episode with CI bands, one panel per suite, drawn with pygame (no matplotlib)."""

from __future__ import annotations

import math
import os
from typing import Any, Mapping

PANEL_W, PANEL_H, MARGIN = 360, 240, 42
AGENT_COLOUR = (200, 30, 30)
BASELINE_COLOURS = {
    "random": (150, 150, 150),
    "qlearning": (0, 120, 200),
    "explorer": (0, 150, 80),
    "oracle": (120, 60, 170),
}


def _blend(colour: tuple[int, int, int], alpha: float) -> tuple[int, int, int]:
    return tuple(int(255 - alpha * (255 - c)) for c in colour)  # type: ignore[return-value]


def draw_curves(
    summary: Mapping[str, Mapping[str, Any]],
    path: str | os.PathLike,
    label: str,
    baselines: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
) -> None:
    """Write a PNG: for each suite, `label`'s success curve with its 95% CI band, over the baselines' curves.

    `summary` maps suite -> metrics (`curve`, `curve_ci_low`, `curve_ci_high`); `baselines` maps
    baseline name -> suite -> metrics (only `curve` is drawn for them).
    """
    import pygame

    pygame.font.init()
    font = pygame.font.Font(None, 20)
    suites = list(summary)
    cols = min(3, len(suites))
    rows = math.ceil(len(suites) / cols)
    legend_h = 30
    surface = pygame.Surface((cols * PANEL_W, rows * PANEL_H + legend_h))
    surface.fill((255, 255, 255))
    for k, suite in enumerate(suites):
        ox, oy = (k % cols) * PANEL_W, (k // cols) * PANEL_H + legend_h
        x0, y0, w, h = ox + MARGIN, oy + 26, PANEL_W - MARGIN - 14, PANEL_H - 26 - 30
        metrics = summary[suite]
        n = len(metrics["curve"])

        def point(i: int, v: float) -> tuple[float, float]:
            return x0 + (w * i / max(n - 1, 1)), y0 + h * (1 - v)

        pygame.draw.rect(surface, (245, 245, 245), (x0, y0, w, h))
        for v in (0.0, 0.25, 0.5, 0.75, 1.0):
            pygame.draw.line(surface, (215, 215, 215), point(0, v), point(n - 1, v))
            surface.blit(font.render(f"{v:.2f}", True, (90, 90, 90)), (ox + 4, point(0, v)[1] - 7))
        for i in sorted({0, n - 1, (n - 1) // 2}):
            surface.blit(font.render(str(i + 1), True, (90, 90, 90)), (point(i, 0)[0] - 4, y0 + h + 4))
        surface.blit(font.render(f"{suite}  (success per episode)", True, (20, 20, 20)), (x0, oy + 6))
        if n > 1:
            band = [point(i, v) for i, v in enumerate(metrics["curve_ci_high"])]
            band += [point(i, v) for i, v in reversed(list(enumerate(metrics["curve_ci_low"])))]
            pygame.draw.polygon(surface, _blend(AGENT_COLOUR, 0.25), band)
        for name, per_suite in (baselines or {}).items():
            if name == label:
                continue  # the agent is itself a baseline: drawn once, as the agent
            curve = per_suite.get(suite, {}).get("curve")
            if curve and len(curve) == n and n > 1:
                pygame.draw.lines(surface, BASELINE_COLOURS.get(name, (0, 0, 0)), False, [point(i, v) for i, v in enumerate(curve)], 2)
        if n > 1:
            pygame.draw.lines(surface, AGENT_COLOUR, False, [point(i, v) for i, v in enumerate(metrics["curve"])], 3)
        else:
            pygame.draw.circle(surface, AGENT_COLOUR, point(0, metrics["curve"][0]), 4)
    x = 10
    others = [(b, BASELINE_COLOURS.get(b, (0, 0, 0))) for b in (baselines or {}) if b != label]
    for name, colour in [(label, AGENT_COLOUR)] + others:
        pygame.draw.line(surface, colour, (x, 15), (x + 24, 15), 4)
        text = font.render(name, True, (20, 20, 20))
        surface.blit(text, (x + 30, 8))
        x += 30 + text.get_width() + 20
    pygame.image.save(surface, os.fspath(path))
