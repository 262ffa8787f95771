#!/usr/bin/env bash
# How the shipped reference models were made: a 2-core CPU, no GPU; both trainings ran side by side with one
# torch thread each. A training that stops resumes where it stopped: rerun its command with --resume.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p data runs results
export OMP_NUM_THREADS=1  # two runs share two cores: oversubscribed thread pools are many times slower

# Learning histories on training maps (disjoint from every evaluation map), seconds each.
icrl-bench data generate --out data/ql-learning.npz --learner qlearning --layout learning --episodes 30 --n-maps 500
icrl-bench data generate --out data/explorer-learning.npz --learner explorer --layout learning --episodes 30 --n-maps 2000

# icrl-dqn-small: double DQN, hybrid (half of each batch from the Q-learning histories, half from a replay
# buffer of its own trials on fresh training maps), cross-episode objective. 71 min.
icrl-bench train dqn --mode hybrid --cross-episode --data-fraction 0.5 --data data/ql-learning.npz \
    --out runs/icrl-dqn-small --steps 4200 --batch-size 16 --max-positions 256 --lr 5e-4 --n-obs 100 \
    --d-model 128 --layers 4 --rollout-every 8 --eval-every 250 --eval-trials 32 --threads 1 --quiet &
# icrl-distill-small: imitate the explorer's actions from its own history (algorithm distillation). 26 min.
icrl-bench train distill --data data/explorer-learning.npz --out runs/icrl-distill-small --steps 2500 \
    --batch-size 16 --max-positions 256 --lr 5e-4 --n-obs 100 --d-model 128 --layers 4 \
    --eval-every 250 --eval-trials 32 --threads 1 --quiet &
wait

# The final checkpoint or best.pt, whichever does better on 200 other held-out training-distribution trials
# (the final one did, for the DQN run).
python scripts/select_checkpoint.py runs/icrl-dqn-small

for name in icrl-dqn-small icrl-distill-small; do
    icrl-bench train export --checkpoint "runs/$name/checkpoint.pt" --out "icrl_bench/models/$name.pt"
    icrl-bench evaluate "$name" --out "results/$name"
    icrl-bench evaluate "$name" --out "results/$name-paper" --forced-exploration paper
done
python scripts/reference_tables.py results/icrl-distill-small results/icrl-dqn-small

# icrl-rl2-small (issue 11): RL^2 on the trial env, scripts/general_models.sh (47 min on one core). The file and
# the play mode are chosen on held-out training-distribution trials only (scripts/select_rl2.py), then exported.
bash scripts/general_models.sh
python scripts/select_rl2.py runs/rl2-general/policy.pt runs/rl2-general/best.pt --trials 100 \
    --suites id,nonstationary,stitching --modes greedy,sample
icrl-bench train export --checkpoint runs/rl2-general/checkpoint.pt --out icrl_bench/models/icrl-rl2-small.pt
icrl-bench evaluate icrl-rl2-small --out results/icrl-rl2-small
# Its ablations (one core, 150 updates each) and their table.
bash scripts/rl2_ablations.sh
python scripts/rl2_ablation_table.py --evaluate
