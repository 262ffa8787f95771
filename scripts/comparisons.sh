#!/usr/bin/env bash
# The README's controlled comparisons (logs in docs/training_logs/). Run after scripts/reference_models.sh has
# made data/ql-learning.npz. Everything but the compared setting is the icrl-dqn-small recipe.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
COMMON="--batch-size 16 --max-positions 256 --lr 5e-4 --n-obs 100 --d-model 128 --layers 4 --rollout-every 8 \
 --eval-every 250 --eval-trials 32 --threads 1 --quiet"

# Objective: the paper's per-episode bootstrapping (stopped at 1,250 updates) and pure online per-episode DQN
# (replay seeded with the data, then evicted; stopped at 940), against the cross-episode run of icrl-dqn-small.
icrl-bench train dqn --mode hybrid --data-fraction 0.5 --data data/ql-learning.npz --out runs/dqn-hybrid-per-episode \
    --steps 1250 $COMMON
icrl-bench train dqn --mode online --data data/ql-learning.npz --out runs/dqn-online-per-episode --steps 940 $COMMON

# Data quality: the paper's sets of Q-learning episodes, low / mid / high, 500 updates each, then `id`.
for q in low mid high; do
    icrl-bench data generate --out "data/sets-$q.npz" --quality "$q"
    icrl-bench train dqn --mode hybrid --cross-episode --data-fraction 0.5 --data "data/sets-$q.npz" \
        --out "runs/dqn-quality-$q" --steps 500 $COMMON
    icrl-bench evaluate icrl_bench.training.agent:DQNAgent --agent-arg "checkpoint=runs/dqn-quality-$q/checkpoint.pt" \
        --suites id --out "results/dqn-quality-$q"
done
