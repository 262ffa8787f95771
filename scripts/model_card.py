"""Write a shipped model's card from its run folder and its evaluation results (nothing typed in by hand).

    python scripts/model_card.py icrl-dqn-small --run runs/icrl-dqn-small --data data/ql.npz \
        --default results/icrl-dqn-small --paper results/icrl-dqn-small-paper --command "icrl-bench train dqn ..."

Reads the run's config.json and log.csv (steps, wall time, quick evaluations), the dataset's metadata, and the
two results.json files (default protocol; the paper's forced-exploration schedule), and writes
icrl_bench/models/<name>.md.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def _ci(m: dict) -> str:
    return f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"


def _float(row: dict, key: str) -> str:
    return f"{float(row[key]):.3f}" if row.get(key) else "-"  # an RL^2 log has the AUC only


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("name")
    p.add_argument("--run", required=True)
    p.add_argument("--data", default="", help="the training dataset (.npz); none for an RL^2 run")
    p.add_argument("--default", required=True, help="results folder, default protocol")
    p.add_argument("--paper", default="", help="results folder, --forced-exploration paper (may hold some suites)")
    p.add_argument("--command", required=True, help="the training command")
    p.add_argument("--data-command", default="")
    p.add_argument("--summary", required=True, help="one paragraph: what the model is")
    args = p.parse_args()

    import numpy as np

    config = json.loads((Path(args.run) / "config.json").read_text())
    import torch

    folder = Path("icrl_bench/models") / args.name  # an LLM agent ships as an adapter folder
    rl2 = None  # an RL^2 policy file (`training.rl2.save_policy`)
    if folder.is_dir():
        model_step = int(json.loads((folder / "q_head.json").read_text())["step"])
    else:
        saved = torch.load(f"icrl_bench/models/{args.name}.pt", weights_only=False)
        rl2 = saved if "hidden" in saved and "update" in saved else None
        model_step = int(saved["update"] if rl2 else saved["step"])
    step_key = "update" if rl2 else "step"
    rows = [r for r in csv.DictReader(open(Path(args.run) / "log.csv")) if int(r[step_key]) <= model_step]
    words = args.command.split()
    for key in ("data", "out"):  # show the paths of the command, not those of the machine it ran on
        if f"--{key}" in words:
            config[key] = words[words.index(f"--{key}") + 1]
    evals = [r for r in rows if r.get("eval_auc")]
    # Wall time: the log's clock runs on across resumes; older logs restarted it, so add up the segments.
    seconds = [float(r["seconds"]) for r in rows]
    wall = sum(a for a, b in zip(seconds, seconds[1:]) if b < a) + seconds[-1]
    meta = None
    if args.data:
        with np.load(args.data) as z:
            meta = json.loads(str(z["meta"]))
    default = json.loads((Path(args.default) / "results.json").read_text())
    paper = json.loads((Path(args.paper) / "results.json").read_text()) if args.paper else {"summary": {}}
    n_params = None
    if rl2:
        size = (Path("icrl_bench/models") / f"{args.name}.pt").stat().st_size / 1e6
        n_params = sum(t.numel() for t in rl2["policy"].values())
    elif folder.is_dir():
        from safetensors.torch import load_file

        size = sum(f.stat().st_size for f in folder.iterdir()) / 1e6
        n_params = sum(t.numel() for t in load_file(str(folder / "adapter_model.safetensors")).values())
    else:
        size = (Path("icrl_bench/models") / f"{args.name}.pt").stat().st_size / 1e6
        try:
            from icrl_bench.training.agent import load_network

            n_params = sum(t.numel() for t in load_network(f"icrl_bench/models/{args.name}.pt").parameters())
        except Exception:  # noqa: BLE001 - the card is still useful without it
            pass
    out = [f"# {args.name}", "", args.summary, ""]
    out += ["## How it was made", "", "```bash", *([args.data_command] if args.data_command else []), args.command,
            f"icrl-bench train export --checkpoint {config['out']}/checkpoint.pt --out icrl_bench/models/{args.name}"
            + ("" if folder.is_dir() else ".pt"),
            "```", ""]  # fmt: skip
    kind = "trainable adapter parameters" if folder.is_dir() else "parameters"
    what = "adapter folder: peft weights, q_head.json" if folder.is_dir() else "weights in float32, config"
    data_line = (f"- Data: {meta['config']['n_maps']} training maps of `{meta['config']['suite']}` "
                 f"(disjoint from every evaluation map), learner `{meta['config']['learner']}`, layout "
                 f"`{meta['config']['layout']}`, {meta['n_steps']:,} steps, learner success {meta['success_rate']:.3f}"
                 if meta else f"- Data: none; {int(rows[-1]['steps']):,} environment steps of trials drawn by "
                 f"`{config.get('base')}` (evaluation maps excluded)")
    out += [f"- {kind.capitalize()}: {n_params:,}" if n_params else "- Parameters: (not loaded)",
            f"- File: {size:.1f} MB ({what})",
            f"- Updates: {model_step}; wall time {wall / 60:.1f} min "
            f"(torch threads: {config['threads'] or 'all'}; a 2-core CPU machine shared with another run)",
            data_line,
            "", "Hyper-parameters (`config.json`):", "", "```json", json.dumps(config, indent=1), "```", ""]  # fmt: skip
    if evals:
        out += ["Quick evaluations during training (held-out training-distribution maps, greedy):", "",
                "| update | AUC | episode 1 | episodes 21-30 |", "|---|---|---|---|"]  # fmt: skip
        out += [f"| {r[step_key]} | {float(r['eval_auc']):.3f} | {_float(r, 'eval_first')} | {_float(r, 'eval_last10')} |"
                for r in evals]  # fmt: skip
        out.append("")
    out += ["## Results (seed 0, 100 trials per suite, 95% bootstrap CIs)", "",
            "| suite | AUC | episode 1 | last 10 | AUC, paper's forced exploration |", "|---|---|---|---|---|"]  # fmt: skip
    for suite, m in default["summary"].items():
        pm = paper["summary"].get(suite)
        out.append(f"| {suite} | {_ci(m['auc'])} | {_ci(m['first'])} | {_ci(m['last10'])} | {_ci(pm['auc']) if pm else '-'} |")
    out += ["", "`last 10`: mean success over the last ten episodes of the trial (for 30 episodes: 21-30). "
            "Reproduce: `icrl-bench evaluate " + args.name + "` and `icrl-bench evaluate " + args.name
            + " --forced-exploration paper`.", ""]  # fmt: skip
    Path(f"icrl_bench/models/{args.name}.md").write_text("\n".join(out))
    print(f"wrote icrl_bench/models/{args.name}.md")


if __name__ == "__main__":
    main()
