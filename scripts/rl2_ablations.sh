#!/usr/bin/env bash
# Issue 11 ablations of the shipped RL^2 recipe (scripts/general_models.sh, runs/rl2-general): each run changes one
# thing (demonstrations, relabeling, the non-stationary part, the stitching part, the discount) and trains the
# same 150 updates (9,830,400 steps); the shipped run's own policy at update 150 is the reference (copied to
# runs/rl2-general/policy-150.pt by the watcher below). One core; every run is deterministic.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs
export OMP_NUM_THREADS=1
STEPS=9830400
COMMON="--total-steps $STEPS --num-envs 512 --num-steps 128 --eval-every 25 --eval-trials 32 --save-every 5 --no-progress"
MIX=ICRLFrozenLake-v0,ICRLFrozenLakeNonStationary-v0:60,ICRLFrozenLakeStitching-v0:5

# The reference: the shipped run's policy after the same 150 updates (it saves every 5 updates, after logging).
( while ! grep -q '^151,' runs/rl2-general/log.csv 2>/dev/null; do sleep 5; done
  cp runs/rl2-general/policy.pt runs/rl2-general/policy-150.pt ) &

# Demonstrations never read (stitching trials are still played, without them).
icrl-bench train rl2 --out runs/rl2-abl-nodemos --base $MIX $COMMON ${RESUME:-}
icrl-bench train rl2 --out runs/rl2-abl-norelabel --base $MIX --demonstrations true --relabel false $COMMON ${RESUME:-}
icrl-bench train rl2 --out runs/rl2-abl-nochange --base ICRLFrozenLake-v0,ICRLFrozenLakeStitching-v0:5 \
    --demonstrations true $COMMON ${RESUME:-}
icrl-bench train rl2 --out runs/rl2-abl-nostitch --base ICRLFrozenLake-v0,ICRLFrozenLakeNonStationary-v0:60 \
    --demonstrations true $COMMON ${RESUME:-}
# The objective: a short horizon (gamma 0.9: a step 20 steps later counts 0.12) gives little credit for exploring
# in one inner episode to succeed in the next ones - the cross-episode credit that RL^2 learns from.
icrl-bench train rl2 --out runs/rl2-abl-gamma09 --base $MIX --demonstrations true --gamma 0.9 $COMMON ${RESUME:-}
wait
