#!/usr/bin/env bash
# How the shipped reference models were made (a 2-core CPU, no GPU; both trainings ran side by side, one
# torch thread each). Each training resumes where it stopped: rerun the same command with --resume.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p data runs results

# Learning histories on training maps (disjoint from every evaluation map), seconds each.
icrl-bench data generate --out data/ql-learning.npz --learner qlearning --layout learning --episodes 30 --n-maps 500
icrl-bench data generate --out data/explorer-learning.npz --learner explorer --layout learning --episodes 30 --n-maps 2000

# icrl-dqn-small: online double DQN, the replay buffer seeded with the Q-learning histories.
icrl-bench train dqn --mode online --data data/ql-learning.npz --out runs/icrl-dqn-small --steps 3000 \
    --batch-size 16 --max-positions 256 --lr 5e-4 --n-obs 100 --d-model 128 --layers 4 --rollout-every 8 \
    --eval-every 250 --eval-trials 32 --threads 1 --quiet &
# icrl-distill-small: imitate the explorer's actions from its own history (algorithm distillation).
icrl-bench train distill --data data/explorer-learning.npz --out runs/icrl-distill-small --steps 4000 \
    --batch-size 16 --max-positions 256 --lr 5e-4 --n-obs 100 --d-model 128 --layers 4 \
    --eval-every 250 --eval-trials 32 --threads 1 --quiet &
wait

for name in icrl-dqn-small icrl-distill-small; do
    icrl-bench train export --checkpoint "runs/$name/checkpoint.pt" --out "icrl_bench/models/$name.pt"
    icrl-bench evaluate "$name" --out "results/$name" --workers 2
    icrl-bench evaluate "$name" --out "results/$name-paper" --forced-exploration paper --workers 2
done
