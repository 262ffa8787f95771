"""Trials as text: the paper's Llama-3 token format, a plain format for other tokenizers, and an action parser.

An episode is a sequence of `Transition`s; a trial is a sequence of episodes, simply concatenated.

Llama-3 format (Rentschler & Roberts 2025, as their notebooks write it): each episode is
``<|begin_of_text|>``, the first observation item, then per step the action item, the next observation item
and - only when the reward is non-zero - a reward item, then ``<|end_of_text|>``. An item is
``<|start_header_id|>{name}<|end_header_id|>{value}<|eot_id|>``; observations are tile indices, actions the
words ``left down right up``, rewards written as floats (``1.0``).
"""

from __future__ import annotations

from typing import Sequence

from icrl_bench.envs.task import ACTION_NAMES, Transition

Episode = Sequence[Transition]

BEGIN, END, EOT = "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"


def llama3_item(name: str, value: object) -> str:
    """One ``<|start_header_id|>name<|end_header_id|>value<|eot_id|>`` item."""
    return f"<|start_header_id|>{name}<|end_header_id|>{value}{EOT}"


def _check(episode: Episode, index: int) -> None:
    if not episode:
        raise ValueError(f"episode {index} has no transitions: an episode needs at least one step")
    for step, (prev, cur) in enumerate(zip(episode, episode[1:]), start=1):
        if cur.obs != prev.next_obs:
            raise ValueError(
                f"episode {index}, step {step}: observation {cur.obs} does not follow the previous next_obs {prev.next_obs}"
            )


def format_llama3(episodes: Sequence[Episode]) -> str:
    """A trial in the paper's Llama-3 token format (see the module docstring)."""
    parts = []
    for i, episode in enumerate(episodes):
        _check(episode, i)
        parts.append(BEGIN + llama3_item("observation", episode[0].obs))
        for t in episode:
            parts.append(llama3_item("action", ACTION_NAMES[t.action]) + llama3_item("observation", t.next_obs))
            if t.reward != 0:
                parts.append(llama3_item("reward", float(t.reward)))
        parts.append(END)
    return "".join(parts)


def format_plain(episodes: Sequence[Episode]) -> str:
    """A trial as plain words, one line per episode: ``obs 8 | act right | obs 9 | ... | reward 1.0 | end``."""
    lines = []
    for i, episode in enumerate(episodes):
        _check(episode, i)
        items = [f"obs {episode[0].obs}"]
        for t in episode:
            items += [f"act {ACTION_NAMES[t.action]}", f"obs {t.next_obs}"]
            if t.reward != 0:
                items.append(f"reward {float(t.reward)}")
        items.append("end")
        lines.append(" | ".join(items))
    return "\n".join(lines) + "\n"


def parse_action(text: str) -> int:
    """The action index of an action word (``left`` 0, ``down`` 1, ``right`` 2, ``up`` 3).

    Surrounding whitespace is ignored; anything else - other words, other case, numbers - is rejected, so a
    model's malformed output is never silently mapped to an action.
    """
    if not isinstance(text, str):
        raise ValueError(f"an action must be text, got {type(text).__name__} {text!r}")
    word = text.strip()
    if word not in ACTION_NAMES:
        raise ValueError(f"invalid action text {text!r}: expected exactly one of {', '.join(ACTION_NAMES)}")
    return ACTION_NAMES.index(word)
