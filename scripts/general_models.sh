#!/usr/bin/env bash
# Issue 11 (in progress): the runs behind a general in-context learner, on this 2-core CPU, one core each.
# Both checkpoint; rerun with RESUME=--resume to continue them where they stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p data runs
export OMP_NUM_THREADS=1

# RL^2: a GRU policy trained by PPO across whole trials, tiles relabeled into 100 symbols per trial.
icrl-bench train rl2 --out runs/rl2-id --total-steps 30000000 --num-envs 512 --num-steps 128 --eval-every 25 \
    --eval-trials 32 --save-every 5 --no-progress ${RESUME:-} &

# The same on a mixture: in-distribution trials, non-stationary ones of 60 episodes (the map changes after 30)
# and stitching maps (evaluation maps excluded, as in every rl2 run).
icrl-bench train rl2 --out runs/rl2-mix --base ICRLFrozenLake-v0,ICRLFrozenLakeNonStationary-v0:60,ICRLFrozenLakeStitching-v0:5 \
    --total-steps 30000000 --num-envs 512 --num-steps 128 --eval-every 25 --eval-trials 32 --save-every 5 \
    --no-progress ${RESUME:-} &

# A transformer distilled from the explorer by DAgger (it plays, the explorer labels its states) on id, stitching
# (demonstrations first) and nonstationary (the map changes after episode 30) trials in turn, each trial
# relabeled (tiles into 100 symbols, actions permuted), on top of explorer histories on 2,000 id maps.
icrl-bench data generate --out data/explorer-learning.npz --learner explorer --layout learning --episodes 30 --n-maps 2000
icrl-bench train distill --mode hybrid --teacher explorer --data data/explorer-learning.npz \
    --suite id,stitching,nonstationary --online-episodes 0 --relabel 100 --n-obs 100 --d-model 128 --layers 4 \
    --steps 6000 --batch-size 16 --max-positions 512 --lr 5e-4 --rollout-every 8 --rollout-trials 16 \
    --eval-every 250 --eval-trials 32 --save-every 50 --threads 1 --out runs/icrl-general-small --quiet ${RESUME:-} &
# ... and the same without relabeling (the relabel on/off comparison).
icrl-bench train distill --mode hybrid --teacher explorer --data data/explorer-learning.npz \
    --suite id,stitching,nonstationary --online-episodes 0 --relabel 0 --n-obs 100 --d-model 128 --layers 4 \
    --steps 6000 --batch-size 16 --max-positions 512 --lr 5e-4 --rollout-every 8 --rollout-trials 16 \
    --eval-every 250 --eval-trials 32 --save-every 50 --threads 1 --out runs/icrl-general-small-norelabel --quiet \
    ${RESUME:-} &
wait
