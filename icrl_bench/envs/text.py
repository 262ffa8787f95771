"""Trials as text: the paper's Llama-3 token format, plain formats for other tokenizers, and an action parser.

An episode is a sequence of `Transition`s; a trial is a sequence of episodes, simply concatenated.

Each format is a `TextFormat`: the text before an episode's first decision, the action word chosen there, and
the text after each action (its outcome, then either the next decision's prefix or the episode's end). A
language model is asked for the action exactly where the prefix ends, so its four action words must each be
one token of its tokenizer (`icrl_bench.training.text_model` checks). Three formats:

- ``llama3`` (the paper's, below);
- ``plain``, compact for any tokenizer: one line per step, ``<obs> <action>``, a reward when it is not zero,
  and the last tile of an episode followed by ``end``, e.g. ``0 right\n1 down\n5 end\n`` (a hole) or
  ``14 right reward 1\n15 end\n`` (the goal); about 3.4 tokens a step with SmolLM2's tokenizer;
- ``words``, chat-like: ``obs 8 | act right | obs 9 | ... | reward 1.0 | end`` (about 12 tokens a step).

Llama-3 format (Rentschler & Roberts 2025, as their notebooks write it): each episode is
``<|begin_of_text|>``, the first observation item, then per step the action item, the next observation item
and - only when the reward is non-zero - a reward item, then ``<|end_of_text|>``. An item is
``<|start_header_id|>{name}<|end_header_id|>{value}<|eot_id|>``; observations are tile indices, actions the
words ``left down right up``, rewards written as floats (``1.0``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

from icrl_bench.envs.task import ACTION_NAMES, Transition

Episode = Sequence[Transition]

BEGIN, END, EOT = "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"
LLAMA3_SPECIAL_TOKENS = (BEGIN, "<|start_header_id|>", "<|end_header_id|>", EOT, END)


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


@dataclasses.dataclass(frozen=True)
class TextFormat:
    """A text format as pieces: ``start(obs)``, then per step an action word and ``after(transition)``.

    ``start`` ends where the first action is chosen; ``after`` writes what the action led to and ends either
    where the next action is chosen or (the transition ended the episode) at the end of the episode.
    """

    name: str
    action_words: tuple[str, str, str, str]  # left, down, right, up as written after a prefix
    start: Callable[[int], str]
    after: Callable[[Transition], str]

    def text(self, episodes: Sequence[Episode]) -> str:
        """The whole trial as one string."""
        parts = []
        for i, episode in enumerate(episodes):
            _check(episode, i)
            parts.append(self.start(episode[0].obs))
            for t in episode:
                parts += [self.action_words[t.action], self.after(t)]
        return "".join(parts)


def _llama3_after(t: Transition) -> str:
    reward = llama3_item("reward", float(t.reward)) if t.reward != 0 else ""
    follows = END if t.terminated or t.truncated else "<|start_header_id|>action<|end_header_id|>"
    return EOT + llama3_item("observation", t.next_obs) + reward + follows


def _plain_after(t: Transition) -> str:
    reward = f" reward {t.reward:g}" if t.reward != 0 else ""
    return f"{reward}\n{t.next_obs}" + (" end\n" if t.terminated or t.truncated else "")


def _words_after(t: Transition) -> str:
    reward = f" | reward {float(t.reward)}" if t.reward != 0 else ""
    return f" | obs {t.next_obs}{reward}" + (" | end\n" if t.terminated or t.truncated else " | act")


TEXT_FORMATS = {
    "llama3": TextFormat("llama3", tuple(ACTION_NAMES),  # type: ignore[arg-type]
                         lambda o: f"{BEGIN}{llama3_item('observation', o)}<|start_header_id|>action<|end_header_id|>",
                         _llama3_after),  # fmt: skip
    "plain": TextFormat("plain", tuple(" " + a for a in ACTION_NAMES), str, _plain_after),  # type: ignore[arg-type]
    "words": TextFormat("words", tuple(" " + a for a in ACTION_NAMES), lambda o: f"obs {o} | act", _words_after),  # type: ignore[arg-type]
}


def format_llama3(episodes: Sequence[Episode]) -> str:
    """A trial in the paper's Llama-3 token format (see the module docstring)."""
    return TEXT_FORMATS["llama3"].text(episodes)


def format_plain(episodes: Sequence[Episode]) -> str:
    """A trial in the compact ``plain`` format: ``<obs> <action>`` per line, ``<tile> end`` after an episode."""
    return TEXT_FORMATS["plain"].text(episodes)


def format_words(episodes: Sequence[Episode]) -> str:
    """A trial as chat-like words, one line per episode: ``obs 8 | act right | obs 9 | ... | reward 1.0 | end``."""
    return TEXT_FORMATS["words"].text(episodes)


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
