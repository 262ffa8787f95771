"""The `icrl-bench` command line: a thin layer over the package's functions."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from typing import Any, Sequence

from icrl_bench.envs.calibration import CALIBRATION_SEED, calibrate  # noqa: F401 - re-exported
from icrl_bench.envs.registration import ENV_SPECS
from icrl_bench.protocol.runner import SettingError


def cmd_envs(args: argparse.Namespace) -> int:
    """List the registered environment ids with their arguments and, unless --no-calibrate, calibration numbers."""
    print(f"{'id':34} {'random':>7} {'optimal':>8} {'path':>5}  description / arguments")
    for env_id, (kwargs, description) in ENV_SPECS.items():
        if args.calibrate > 0:
            c = calibrate(env_id, args.calibrate)
            numbers = f"{c['random']:7.3f} {c['optimal']:8.3f} {c['shortest_path']:5.2f}"
        else:
            numbers = f"{'':7} {'':8} {'':5}"
        shown = {k: ("<paper task>" if k == "task" else v) for k, v in kwargs.items()}
        print(f"{env_id:34} {numbers}  {description} {shown if shown else ''}")
    if args.calibrate > 0:
        print(
            f"\nrandom / optimal: exact success probability per episode of a uniform-random policy / of the best "
            f"policy that knows the map, averaged over {args.calibrate} maps; path: mean shortest start-to-goal moves."
        )
    return 0


def cmd_suites(args: argparse.Namespace) -> int:
    """List the evaluation suites with versions and hashes."""
    from icrl_bench.protocol.suites import SUITES

    print(f"{'suite':16} {'version':>7} {'trials':>6} {'episodes':>8}  {'hash':16}  description")
    for suite in SUITES.values():
        print(f"{suite.name:16} {suite.version:7} {suite.n_trials:6} {suite.n_episodes:8}  {suite.hash:16}  {suite.description} ({suite.env_id})")
    return 0


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-")[:60] or "agent"


def _add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """--backend and its Ray options (evaluate, leaderboard verify)."""
    parser.add_argument("--backend", choices=["local", "ray"], default="local",
                        help="local (default): this machine's processes; ray: Ray actors (pip install -e '.[ray]'), "
                             "--workers of them, on a local Ray instance or the cluster at --address")  # fmt: skip
    parser.add_argument("--address", help="Ray: the cluster to join (HEAD_IP:6379, or 'auto'); default: start a "
                                           "local instance on 127.0.0.1")  # fmt: skip
    parser.add_argument("--cpus-per-worker", type=float, default=1.0, help="Ray: CPUs each worker reserves (default 1)")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0, help="Ray: GPUs each worker reserves (default 0)")


def _ray_backend(args: argparse.Namespace) -> Any:
    """The `RayBackend` of --backend ray (None for local); Ray options without it are an error."""
    if args.backend != "ray":
        given = [f"--{k.replace('_', '-')}" for k, d in (("address", None), ("cpus_per_worker", 1.0),
                                                         ("gpus_per_worker", 0.0)) if getattr(args, k) != d]  # fmt: skip
        if given:
            raise SettingError(f"{', '.join(given)} apply to --backend ray only")
        return None
    from icrl_bench.protocol.ray_backend import RayBackend

    try:
        return RayBackend(args.address, args.cpus_per_worker, args.gpus_per_worker)
    except ValueError as e:
        raise SettingError(str(e)) from None


def _check_evaluate_arguments(args: argparse.Namespace) -> None:
    """Every value of `evaluate` that argparse cannot check itself: a SettingError saying what to fix."""
    if args.workers < 1:
        raise SettingError(f"--workers must be at least 1, got {args.workers}")
    if args.in_process and args.workers != 1:
        raise SettingError("--in-process plays in this one process: it cannot be combined with --workers > 1")
    if args.in_process and args.backend != "local":
        raise SettingError("--in-process plays in this one process: it cannot be combined with --backend ray")
    if args.in_process and (args.isolate or args.isolate_with):
        raise SettingError("--in-process and --isolate exclude each other: choose one")
    if (args.no_sandbox or args.sandbox_bind) and not (args.isolate or args.isolate_with):
        raise SettingError("--no-sandbox and --sandbox-bind apply to an isolated agent: add --isolate")
    if not (args.step_timeout >= 0 and math.isfinite(args.step_timeout)):
        raise SettingError(f"--step-timeout must be positive seconds, or 0 for no limit; got {args.step_timeout}")
    if args.trials is not None and args.trials < 1:
        raise SettingError(f"--trials must be at least 1, got {args.trials}")
    if args.agent_cmd is not None:
        import shlex
        import shutil

        try:
            words = shlex.split(args.agent_cmd)
        except ValueError as e:
            raise SettingError(f"--agent-cmd {args.agent_cmd!r} cannot be split into words ({e})") from None
        if not words:
            raise SettingError("--agent-cmd is empty: give the command that starts your agent, e.g. "
                               "--agent-cmd 'python examples/random_agent.py'")  # fmt: skip
        if shutil.which(words[0]) is None:
            raise SettingError(f"--agent-cmd: the program {words[0]!r} was not found (not an executable file, nor on PATH)")


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate an agent on suites; write the results folder and print the table."""
    from icrl_bench.agents import AgentSpec, AgentSpecError, parse_agent_args
    from icrl_bench.envs.task import InvalidTaskError
    from icrl_bench.protocol.evaluation import EvaluationError, evaluate, print_table
    from icrl_bench.protocol.external import ExternalAgentError
    from icrl_bench.protocol.isolation import AgentProcessError
    from icrl_bench.protocol.runner import AgentError, ProtocolOptions
    from icrl_bench.protocol.sandbox import SandboxError
    from icrl_bench.protocol.suites import DEFAULT_SUITES, UnknownSuiteError

    out = args.out
    try:
        if args.agent_option is not None:
            if args.agent is not None and args.agent != args.agent_option:
                raise AgentSpecError(f"two agents given ({args.agent!r} and --agent {args.agent_option!r}): give one")
            args.agent = args.agent_option
        _check_evaluate_arguments(args)
        if args.agent is None and args.agent_cmd is None:
            raise AgentSpecError("name an agent (e.g. explorer, my_pkg.module:MyAgent, my_agent.py:MyAgent) or give --agent-cmd")
        recipe = AgentSpec(name=args.agent, kwargs=parse_agent_args(args.agent_arg), command=args.agent_cmd)
        if args.isolate or args.isolate_with:
            from icrl_bench.protocol.isolation import IsolatedSpec

            from icrl_bench.protocol.sandbox import choose_sandbox

            sandbox = choose_sandbox(args.isolate_with, args.no_sandbox, args.sandbox_bind)
            recipe = IsolatedSpec(recipe, sandbox)  # type: ignore[assignment]
            print(f"note: the agent runs isolated; sandbox: {sandbox.describe()}", file=sys.stderr)
        suites = DEFAULT_SUITES if args.suites == "all" else tuple(s.strip() for s in args.suites.split(","))
        options = ProtocolOptions(
            forced_exploration=args.forced_exploration,
            step_timeout=args.step_timeout if args.step_timeout > 0 else None,
            batch_size=args.batch_size,
            on_invalid_action=args.on_invalid_action,
        )
        out = args.out or f"results/{_slug(recipe.label)}"
        # The default folder of an earlier run with the same settings is continued (or just summarised again);
        # with other settings evaluate refuses, and nothing is overwritten without --overwrite.
        resume = args.resume or (args.out is None and os.path.exists(os.path.join(out, "run.json")))
        results = evaluate(
            recipe, suites, out, args.trials, args.seed, options, args.workers, resume,
            progress=not args.no_progress and sys.stderr.isatty(), forecast=not args.no_progress, in_process=args.in_process,
            overwrite=args.overwrite, ray=_ray_backend(args),
        )
    except (AgentSpecError, AgentError, AgentProcessError, ExternalAgentError, EvaluationError, InvalidTaskError,
            SettingError, UnknownSuiteError, SandboxError) as e:  # user errors only: a bug elsewhere keeps its traceback  # fmt: skip
        print(f"\nerror: {e}", file=sys.stderr)
        details = getattr(e, "details", "") or getattr(e, "traceback_text", "")
        if args.debug and details:
            print(f"the agent's traceback:\n{details.rstrip()}", file=sys.stderr)
        elif details:
            print("(--debug prints the agent's traceback)", file=sys.stderr)
        if isinstance(e, (AgentError, AgentProcessError, ExternalAgentError)) and out and os.path.isdir(out):
            print(f"finished trials are saved in {out}; fix the agent and continue with --resume", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished trials are saved in {out}; continue with --resume", file=sys.stderr)
        return 130
    print_table(results)
    print(f"results: {out}/results.json, episodes.csv, summary.csv, curves.png")
    return 0


def cmd_baselines(args: argparse.Namespace) -> int:
    """Evaluate the built-in baselines on every suite; print the README table; optionally write their curves."""
    from icrl_bench.protocol.baseline_runs import baselines_markdown, evaluate_baselines, write_curves

    results = evaluate_baselines(args.out, args.trials, args.workers)
    print(baselines_markdown(results))
    if args.write_curves:
        print(f"wrote {write_curves(results, args.write_curves)}")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    """Validate a results.json with metadata and write it as a new leaderboard submission."""
    from icrl_bench.leaderboard.submission import SubmissionError, load_meta, submit

    try:
        meta = load_meta(args.meta) if args.meta else {}
        path = submit(args.results, args.name, meta, args.board)
    except (SubmissionError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}; now run `icrl-bench leaderboard render` and open a pull request")
    return 0


def cmd_lb_validate(args: argparse.Namespace) -> int:
    """Check submission files (default: every file of the board) and their signatures; list every problem."""
    from pathlib import Path

    from icrl_bench.leaderboard.signing import SigningError
    from icrl_bench.leaderboard.submission import SubmissionError, submission_paths, validate_board

    try:
        paths = [Path(f) for f in args.files] or submission_paths(args.board)
        problems = validate_board(paths, args.board)
    except (SubmissionError, SigningError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem)
    print(f"{len(paths)} file(s), {len(problems)} problem(s)")
    return 1 if problems else 0


def cmd_lb_keygen(args: argparse.Namespace) -> int:
    """Make the verifier's Ed25519 key pair: the private key file, and the public key committed in the board."""
    from icrl_bench.leaderboard.signing import SigningError, generate_key

    try:
        private, public = generate_key(args.private_key, args.board)
    except SigningError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {private} (private: keep it secret, never commit it) and {public} (public: commit it)")
    print(f"verify with: icrl-bench leaderboard verify SUBMISSION --key-file - < {private}")
    return 0


def _submitted_agent(path: str) -> dict[str, Any]:
    """The agent spec a submission records (name, kwargs, command), or {} where the file has none."""
    from icrl_bench.leaderboard.submission import read_json

    data = read_json(path)
    agent = data.get("results", {}).get("agent") if isinstance(data, dict) and isinstance(data.get("results"), dict) else None
    return agent if isinstance(agent, dict) else {}


def cmd_lb_verify(args: argparse.Namespace) -> int:
    """Re-run an agent, isolated, on fresh tasks with a secret seed and sign the submission's verification."""
    from concurrent.futures.process import BrokenProcessPool

    from icrl_bench.agents import AgentSpec, AgentSpecError, parse_agent_args
    from icrl_bench.leaderboard.signing import SigningError
    from icrl_bench.leaderboard.submission import SubmissionError
    from icrl_bench.leaderboard.verify import verify
    from icrl_bench.protocol.isolation import AgentProcessError
    from icrl_bench.protocol.runner import AgentError
    from icrl_bench.protocol.sandbox import SandboxError, choose_sandbox

    if args.workers < 1 or (args.trials is not None and args.trials < 1):
        print(f"error: --workers and --trials must be at least 1 (got {args.workers} and {args.trials})", file=sys.stderr)
        return 2
    if not (args.step_timeout > 0 and math.isfinite(args.step_timeout)):
        print(f"error: --step-timeout must be a positive number of seconds, got {args.step_timeout}", file=sys.stderr)
        return 2
    try:
        signer = _start_signer(args.key_file)  # first: stdin (the key) goes to the signer before any agent starts
        submitted = _submitted_agent(args.submission)
        kwargs = parse_agent_args(args.agent_arg)
        if not kwargs and not args.agent_cmd:  # default: the options the submission was made with
            kwargs = submitted.get("kwargs") if isinstance(submitted.get("kwargs"), dict) else {}
        name, command = args.agent, args.agent_cmd
        if name is None and command is None:  # default: the agent the submission names
            name, command = submitted.get("name"), submitted.get("command")
            if not isinstance(name, (str, type(None))) or not isinstance(command, (str, type(None))):
                name = command = None
            if name is None and command is None:
                raise AgentSpecError(f"{args.submission} names no agent to re-run: give --agent or --agent-cmd")
            if command is not None or name not in _built_in_agents():  # data never picks code
                raise AgentSpecError(
                    f"{args.submission} names the agent {command or name!r}, which is not built in: verify never runs "
                    "code that an entry names. Read the agent's code, then name it yourself with --agent (or "
                    "--agent-cmd)")  # fmt: skip
        recipe = AgentSpec(name=name, kwargs=kwargs, command=command)
        sandbox = choose_sandbox(args.isolate_with, args.no_sandbox, args.sandbox_bind)
        print(f"verify will run: {command or name} with options {kwargs}; sandbox: {sandbox.describe()}",
              file=sys.stderr)  # fmt: skip
        with signer:
            block = verify(args.submission, recipe, signer, args.trials, args.workers, sandbox, args.step_timeout,
                           ray=_ray_backend(args))  # fmt: skip
    except (SubmissionError, SigningError, AgentSpecError, AgentError, AgentProcessError, SettingError,
            SandboxError) as e:  # fmt: skip
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenProcessPool:
        print("error: a verification worker process died (the agent may have killed it); nothing was written",
              file=sys.stderr)  # fmt: skip
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: the submission was not changed", file=sys.stderr)
        return 130
    for suite, r in block["suites"].items():
        print(f"{suite:16} submitted {r['submitted_auc']:.3f}  re-run {r['rerun_auc']:.3f}  "
              f"difference {r['difference']:+.3f}  p {r['p_value']:.3g}  {'ok' if r['consistent'] else 'INCONSISTENT'}")  # fmt: skip
    print(("verified" if block["verified"] else "NOT verified") + f" ({block['test']}); signed with key {block['key_id']}")
    return 0 if block["verified"] else 1


def _start_signer(key_file: str | None) -> Any:
    """The signer process (`leaderboard.signer`): it reads the key; this process never does."""
    from icrl_bench.leaderboard.signer import SignerProcess
    from icrl_bench.leaderboard.signing import SigningError, check_key_stdin

    if not key_file:
        raise SigningError("give the verifier's private key: --key-file - < verifier.pem (safest), or --key-file PATH")
    if key_file == "-":
        check_key_stdin()
    return SignerProcess(key_file)


def _built_in_agents() -> set[str]:
    """The agents whose code ships with icrl-bench: the only ones an entry may name for `verify` to run."""
    from icrl_bench.baselines import BUILTIN_AGENTS
    from icrl_bench.models import REFERENCE_MODELS

    return set(BUILTIN_AGENTS) | set(REFERENCE_MODELS)


def cmd_lb_render(args: argparse.Namespace) -> int:
    """Write the board's README.md and index.html from its submissions."""
    from icrl_bench.leaderboard.render import render
    from icrl_bench.leaderboard.signing import SigningError
    from icrl_bench.leaderboard.submission import SubmissionError

    try:
        paths = render(args.board)
    except (SubmissionError, SigningError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"wrote {path}")
    return 0


def cmd_lb_add_baselines(args: argparse.Namespace) -> int:
    """Put the four built-in baselines on the board as verified entries (re-runnable by anyone)."""
    from icrl_bench.agents import AgentSpec
    from icrl_bench.leaderboard.render import render
    from icrl_bench.leaderboard.signing import SigningError
    from icrl_bench.leaderboard.submission import SubmissionError, submit
    from icrl_bench.leaderboard.verify import verify
    from icrl_bench.protocol.baseline_runs import BASELINES, evaluate_baselines

    try:
        key = _start_signer(args.key_file)  # the signer process: it holds the key, this one never does
    except SigningError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    evaluate_baselines(args.results, None, args.workers)
    for name in BASELINES:
        out = f"{args.results}/{name}"
        meta = {"authors": "icrl-bench maintainers", "code_url": BASELINE_CODE_URL, "model_size": None,
                "training_data": "none (learns within the trial)" if name != "oracle" else "none (shown the map)",
                "compute": "CPU, seconds", "open_weights": True}  # fmt: skip
        try:
            path = submit(f"{out}/results.json", f"baseline: {name}", meta, args.board)
        except SubmissionError as e:
            print(f"error: {e}\n(remove the old baseline files first to re-create them)", file=sys.stderr)
            return 2
        block = verify(path, AgentSpec(name), key, None, args.workers)
        print(f"{name}: {path} {'verified' if block['verified'] else 'NOT verified'}")
    key.close()
    render(args.board)
    return 0


def cmd_data_generate(args: argparse.Namespace) -> int:
    """Generate a learning-history dataset on training maps (disjoint from every evaluation map)."""
    import time
    from pathlib import Path

    from icrl_bench.protocol.suites import UnknownSuiteError
    from icrl_bench.training.data import DataConfig, DatasetError, generate

    start = time.perf_counter()
    try:
        config = DataConfig(n_maps=args.n_maps, suite=args.suite, learner=args.learner, episodes_per_map=args.episodes,
                            layout=args.layout, quality=args.quality, sets_per_map=args.sets_per_map,
                            seed=args.seed)  # fmt: skip
        data = generate(config)
    except (DatasetError, UnknownSuiteError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    data.save(args.out)
    print(f"wrote {args.out}: {len(data.maps)} maps, {data.n_episodes} episodes, {data.meta['n_steps']} steps, "
          f"{len(data.sequences)} sequences, learner success {data.meta['success_rate']:.3f}, "
          f"{time.perf_counter() - start:.1f} s")  # fmt: skip
    return 0


def _training_module() -> Any:
    """`icrl_bench.training.dqn`, or None after saying what to install (it needs torch and transformers)."""
    try:
        from icrl_bench.training import dqn
    except ImportError as e:
        print(f"error: this command needs torch and transformers: pip install -e '.[llm]' ({e})", file=sys.stderr)
        return None
    return dqn


def _dataclass_from(cls: Any, values: dict[str, Any], prefix: str = "") -> Any:
    import dataclasses

    return cls(**{f.name: values[prefix + f.name] for f in dataclasses.fields(cls) if prefix + f.name in values})


def cmd_train(args: argparse.Namespace) -> int:
    """Train an in-context learner by double DQN or distillation (resumable; see icrl_bench.training.dqn)."""
    from icrl_bench.protocol.suites import UnknownSuiteError
    from icrl_bench.training.config import PRESETS, ConfigError, LLMConfig, ModelConfig, TrainConfig
    from icrl_bench.training.data import DatasetError

    dqn = _training_module()
    if dqn is None:
        return 2
    given = {k: v for k, v in vars(args).items() if v is not None}
    values = PRESETS.get(getattr(args, "preset", None) or "", {}) | given  # options on the command line win
    if args.train_command != "llm":
        values["objective"] = args.train_command
    try:
        cfg = TrainConfig(
            network="llm" if args.train_command == "llm" else "compact",
            model=_dataclass_from(ModelConfig, values, "model."), llm=_dataclass_from(LLMConfig, values, "llm."),
            **{k: v for k, v in values.items() if "." not in k and k in TrainConfig.__dataclass_fields__
               and k not in ("model", "llm", "network")},
        )  # fmt: skip
        path = dqn.train(cfg, resume=bool(args.resume), progress=not args.quiet)
    except (DatasetError, FileExistsError, ConfigError, UnknownSuiteError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"checkpoint: {path}; log: {path.parent / 'log.csv'}")
    return 0


def _rl2_arguments(p: argparse.ArgumentParser) -> None:
    """`train rl2`'s options, built from `RL2Config` (importable without torch) so that `-h` stays fast."""
    from icrl_bench.training.config import RL2_HELP, RL2Config

    for f in dataclasses.fields(RL2Config):
        text = f"{RL2_HELP[f.name]} (default {f.default})"
        if isinstance(f.default, bool):
            p.add_argument(f"--{f.name.replace('_', '-')}", type=_true_or_false, metavar="{true,false}",
                           default=f.default, help=text)  # fmt: skip
        else:
            p.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default, help=text)
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _true_or_false(text: str) -> bool:
    if text not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text == "true"


def cmd_train_rl2(args: argparse.Namespace) -> int:
    from icrl_bench.training import rl2

    try:
        print(f"wrote {rl2.run(args)}")
    except rl2.RL2RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_train_export(args: argparse.Namespace) -> int:
    """Write a training checkpoint's network as a small model file (what the package ships)."""
    from icrl_bench.training.config import ConfigError
    dqn = _training_module()
    if dqn is None:
        return 2
    try:
        path = dqn.export_model(args.checkpoint, args.out)
    except (OSError, dqn.CheckpointError, ConfigError) as e:  # a bug (e.g. a KeyError) keeps its traceback
        print(f"error: cannot export {args.checkpoint}: {e}", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in path.iterdir()) if path.is_dir() else path.stat().st_size
    print(f"wrote {path} ({size / 1e6:.1f} MB)")
    return 0


MODEL_FLAGS = {"n_layers": "--layers", "n_heads": "--heads", "max_positions": "--model-max-positions"}


def _add_train_parser(trains: Any, name: str, help: str) -> None:
    """`train dqn` / `train distill` / `train llm`: one option per setting that applies, each with its help line.

    Defaults are None here (the dataclasses' defaults, or a preset's, apply to options not given)."""
    import dataclasses

    from icrl_bench.training.config import (
        ADAPTERS,
        HELP,
        MODES,
        OBJECTIVES,
        PRECISIONS,
        PRESETS,
        LLMConfig,
        ModelConfig,
        TrainConfig,
    )

    CHOICES = {"mode": MODES, "objective": OBJECTIVES, "loss": ("huber", "paper"), "llm.adapter": ADAPTERS[:2],
               "llm.precision": PRECISIONS, "llm.text_format": ("auto", "llama3", "plain", "words")}  # fmt: skip

    p = trains.add_parser(name, help=help, description=help)
    p.add_argument("--resume", action="store_true", default=None, help="continue the run in --out from its checkpoint")
    p.add_argument("--quiet", action="store_true", default=None, help="no progress bar")
    if name == "llm":
        p.add_argument("--preset", choices=sorted(PRESETS),
                       help="defaults of a named configuration (paper: the paper's Llama 3.1 8B run; smollm2-cpu: "
                            "the shipped CPU run); options given here win")  # fmt: skip
    second = (LLMConfig, "llm.", {}) if name == "llm" else (ModelConfig, "model.", MODEL_FLAGS)
    for cls, prefix, flags in ((TrainConfig, "", {}), second):
        for f in dataclasses.fields(cls):
            if (not prefix and f.name in ("model", "llm", "network")) or (f.name == "objective" and name != "llm"):
                continue
            if f.name == "teacher" and name == "dqn":
                continue  # DAgger labels are for distillation only
            flag = flags.get(f.name, "--" + f.name.replace("_", "-"))
            text = f"{HELP[prefix + f.name]} (default: {f.default})"
            if f.type in ("bool", bool):
                p.add_argument(flag, action="store_true", default=None, dest=prefix + f.name, help=HELP[prefix + f.name])
            elif prefix + f.name in CHOICES:
                p.add_argument(flag, choices=CHOICES[prefix + f.name], dest=prefix + f.name, help=text)
            else:
                kind = {"int": int, "float": float}.get(str(f.type), str)
                p.add_argument(flag, type=kind, dest=prefix + f.name, metavar=f.name.upper(), help=text)
    p.set_defaults(func=cmd_train)


def _add_sandbox_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-sandbox", action="store_true",
                   help="run the isolated agent in a plain child process, not in bubblewrap (only where none can "
                        "start; the agent can then read what your user can)")  # fmt: skip
    p.add_argument("--sandbox-bind", action="append", default=[], metavar="PATH",
                   help="show PATH read-only inside the sandbox too (a model folder under a home folder; repeatable)")


BASELINE_CODE_URL = "../icrl_bench/baselines"  # relative to the leaderboard folder
ISOLATE_WITH_HELP = ("start the isolated agent through this command, e.g. a container: 'docker run -i --rm "
                     "--network none IMAGE' (the child is then 'python -m icrl_bench.protocol.isolation' inside it)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="icrl-bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="score an agent on the evaluation suites")
    ev.add_argument("agent", nargs="?", help="random | oracle | qlearning | explorer | icrl-dqn-small | icrl-distill-small | icrl-rl2-small | package.module:attr | path/file.py:attr")
    ev.add_argument("--agent", dest="agent_option", metavar="AGENT", help="the agent, as an option (as for verify)")
    ev.add_argument("--agent-cmd", help="an external agent process speaking the JSON-lines protocol")
    ev.add_argument("--agent-arg", action="append", default=[], metavar="KEY=VALUE", help="agent option (repeatable)")
    ev.add_argument("--suites", default="all", help="comma-separated suite names, or 'all' (default)")
    ev.add_argument("--trials", type=int, default=None, help="trials per suite (default: all 100)")
    ev.add_argument("--seed", type=int, default=0, help="evaluation seed: starts, slips, agent randomness (default 0)")
    ev.add_argument("--workers", type=int, default=1,
                    help="worker processes playing trials (default 1; results do not depend on it)")
    ev.add_argument("--out", help="results folder (default results/<agent>, continued if it holds the same run)")
    ev.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    ev.add_argument("--overwrite", action="store_true", help="discard an earlier evaluation in --out and start afresh")
    ev.add_argument("--forced-exploration", choices=["none", "paper"], default="none",
                    help="none (default): the agent acts from the first step; paper: the paper's random-action schedule")
    ev.add_argument("--step-timeout", type=float, default=10.0, help="seconds per agent call; 0 = no limit")
    ev.add_argument("--on-invalid-action", choices=["error", "random"], default="error",
                    help="error (default): stop, naming the trial; random: replace by a random action and count it")
    ev.add_argument("--batch-size", type=int, default=100, help="trials per call for batched agents")
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")
    ev.add_argument("--isolate", action="store_true",
                    help="run the agent in a child process that sees only what the protocol gives (never the map)")
    ev.add_argument("--isolate-with", metavar="PREFIX", help=ISOLATE_WITH_HELP)
    _add_sandbox_arguments(ev)
    ev.add_argument("--in-process", action="store_true",
                    help="play in this process (for debuggers); an agent that kills its process then ends the run unreported")
    ev.add_argument("--debug", action="store_true", help="print the agent's traceback when it fails")
    _add_backend_arguments(ev)
    ev.set_defaults(func=cmd_evaluate)
    base = sub.add_parser("baselines", help="evaluate the built-in baselines on every suite (the README table)")
    base.add_argument("--out", default="results/baselines", help="folder for the four results folders")
    base.add_argument("--trials", type=int, default=None, help="trials per suite (default: all 100)")
    base.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    base.add_argument("--write-curves", metavar="PATH",
                      help="write the baselines' curves (what curves.png draws behind every agent) to PATH; "
                           "maintainers: icrl_bench/protocol/baseline_curves.json of their checkout")  # fmt: skip
    base.set_defaults(func=cmd_baselines)
    sm = sub.add_parser("submit", help="validate results and add them to the leaderboard folder")
    sm.add_argument("results", help="results.json written by icrl-bench evaluate")
    sm.add_argument("--name", required=True, help="entry name (also its file name)")
    sm.add_argument("--meta", help="metadata file (.json, or flat key: value YAML)")
    sm.add_argument("--board", default="leaderboard", help="leaderboard folder (default ./leaderboard)")
    sm.set_defaults(func=cmd_submit)
    lb = sub.add_parser("leaderboard", help="validate, verify and render the leaderboard")
    lbs = lb.add_subparsers(dest="lb_command", required=True)
    val = lbs.add_parser("validate", help="check submission files and their signatures, listing every problem")
    val.add_argument("files", nargs="*", help="submission files (default: all in BOARD/submissions)")
    val.add_argument("--board", default="leaderboard", help="leaderboard folder: its keys/ hold the public keys")
    val.set_defaults(func=cmd_lb_validate)
    key_help = ("the verifier's Ed25519 private key, read only by a short-lived signer process (never by the one "
                "that starts agents): '-' hands it standard input (safest: --key-file - < verifier.pem), or a PATH "
                "(mode 600; as root the sandboxed agent cannot read it)")
    ver = lbs.add_parser("verify", help="re-run a submitted agent, isolated, on fresh tasks with a secret seed; sign")
    ver.add_argument("submission", help="the submission file (BOARD/submissions/NAME.json), rewritten with the block")
    ver.add_argument("--agent", help="agent spec, as for evaluate (default: the agent the submission names)")
    ver.add_argument("--agent-cmd", help="external agent command, as for evaluate")
    ver.add_argument("--agent-arg", action="append", default=[], metavar="KEY=VALUE",
                     help="agent option (repeatable; default: the submission's options)")
    ver.add_argument("--key-file", help=key_help)
    ver.add_argument("--isolate-with", metavar="PREFIX", help=ISOLATE_WITH_HELP)
    _add_sandbox_arguments(ver)
    ver.add_argument("--trials", type=int, default=None,
                     help="trials per suite (default: the entry's own count; fewer is a quick check, never marked verified)")
    ver.add_argument("--step-timeout", type=float, default=10.0,
                     help="seconds per agent call in the re-run (default 10; the submission's own limit is not used)")
    ver.add_argument("--workers", type=int, default=1, help="worker processes (each with its isolated agent)")
    _add_backend_arguments(ver)
    ver.set_defaults(func=cmd_lb_verify)
    kg = lbs.add_parser("keygen", help="make a verifier key pair (private file + public key in BOARD/keys)")
    kg.add_argument("--private-key", required=True, help="where to write the private key (never overwritten)")
    kg.add_argument("--board", default="leaderboard", help="leaderboard folder for the public key")
    kg.set_defaults(func=cmd_lb_keygen)
    ren = lbs.add_parser("render", help="write leaderboard/README.md and index.html")
    ren.add_argument("--board", default="leaderboard", help="leaderboard folder")
    ren.set_defaults(func=cmd_lb_render)
    ab = lbs.add_parser("add-baselines", help="evaluate, submit and verify the four built-in baselines")
    ab.add_argument("--key-file", help=key_help)
    ab.add_argument("--board", default="leaderboard", help="leaderboard folder")
    ab.add_argument("--results", default="results/baselines", help="folder for the baselines' results")
    ab.add_argument("--workers", type=int, default=1, help="worker processes")
    ab.set_defaults(func=cmd_lb_add_baselines)
    data = sub.add_parser("data", help="training data for in-context learners")
    datas = data.add_subparsers(dest="data_command", required=True)
    gen = datas.add_parser("generate", help="learning histories of a classical learner on training maps")
    gen.add_argument("--out", required=True, help="output .npz file")
    gen.add_argument("--n-maps", type=int, default=250, help="training maps (default 250, the paper's)")
    gen.add_argument("--suite", default="id", help="whose task distribution (training seed space)")
    gen.add_argument("--learner", choices=["qlearning", "explorer", "mixed"], default="qlearning",
                     help="the classical learner whose histories are recorded (mixed: half each)")
    gen.add_argument("--episodes", type=int, default=60, help="episodes the learner plays per map")
    gen.add_argument("--layout", choices=["sets", "learning"], default="sets",
                     help="sets: the paper's sampled, shuffled episode sets; learning: the learner's own order")
    gen.add_argument("--quality", choices=["low", "mid", "high"], default="mid",
                     help="sets layout: how often successful episodes are sampled (the paper's three levels)")
    gen.add_argument("--sets-per-map", type=int, default=4,
                     help="sets layout: sets sampled from each map's episodes (default 4; the paper's ~25)")
    gen.add_argument("--seed", type=int, default=0, help="data seed (maps, learner randomness)")
    gen.set_defaults(func=cmd_data_generate)
    train = sub.add_parser("train", help="train in-context learners (needs the llm extra: torch, transformers)")
    trains = train.add_subparsers(dest="train_command", required=True)
    _add_train_parser(trains, "dqn", "double DQN (offline on a dataset, online, or hybrid); see icrl_bench.training.dqn")
    _add_train_parser(trains, "distill", "imitate a classical learner's actions from its history (algorithm distillation)")
    _add_train_parser(trains, "llm", "a pretrained causal LM with a LoRA/IA3 adapter (the paper's method), by DQN or "
                                     "distillation; multi-GPU: accelerate launch -m icrl_bench.cli train llm ...")
    rl2 = trains.add_parser("rl2", help="RL^2: a GRU policy trained by PPO across whole trials (ICRLFrozenLakeTrial-v0)")
    _rl2_arguments(rl2)
    rl2.set_defaults(func=cmd_train_rl2)
    exp = trains.add_parser("export", help="a checkpoint's network as a small model file (an llm run: an adapter folder)")
    exp.add_argument("--checkpoint", required=True, help="checkpoint.pt of a training run")
    exp.add_argument("--out", required=True, help="model file (.pt) to write, or the adapter folder of an llm run")
    exp.set_defaults(func=cmd_train_export)
    suites = sub.add_parser("suites", help="list the evaluation suites")
    suites.set_defaults(func=cmd_suites)
    envs = sub.add_parser("envs", help="list the registered environments with calibration numbers")
    envs.add_argument(
        "--calibrate", type=int, default=200, metavar="N", help="maps per id for the calibration numbers (0: none)"
    )
    envs.set_defaults(func=cmd_envs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `icrl-bench` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # `icrl-bench suites | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
