#!/usr/bin/env bash
# Issue 11: the shipped general in-context learner, icrl-rl2-small, on this 2-core CPU (one core; the ablations
# in scripts/rl2_ablations.sh ran on the other). It checkpoints; rerun with RESUME=--resume to continue it.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs results
export OMP_NUM_THREADS=1

# RL^2: a GRU policy trained by PPO across whole trials, tiles relabeled into 100 symbols per trial, on a mixture
# of in-distribution trials, non-stationary ones of 60 episodes (the map changes after 30) and stitching maps of 5
# episodes whose demonstrations the policy reads before its first step (evaluation maps excluded, as in every
# rl2 run); discount 0.9, the change that helped most in the ablations (scripts/rl2_ablations.sh).
icrl-bench train rl2 --out runs/rl2-general \
    --base ICRLFrozenLake-v0,ICRLFrozenLakeNonStationary-v0:60,ICRLFrozenLakeStitching-v0:5 --demonstrations true \
    --total-steps 30000000 --num-envs 512 --num-steps 128 --eval-every 25 --eval-trials 32 --save-every 5 --gamma 0.9 \
    --no-progress ${RESUME:-}
