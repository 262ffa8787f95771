"""The protocol end to end: determinism, resume, faulty agents, agent specs, baselines' anchor numbers."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from icrl_bench.agents import AgentSpec, AgentSpecError
from icrl_bench.protocol import AgentError, EvaluationError, ProtocolOptions, evaluate, run_trials
from icrl_bench.protocol.suites import SUITES

ROOT = Path(__file__).resolve().parents[1]
TEST_AGENTS = str(Path(__file__).with_name("agents_for_tests.py"))


def records(results_dir):
    data = json.loads((Path(results_dir) / "results.json").read_text())
    for recs in data["records"].values():
        for r in recs:
            r.pop("wall_time")
    return data["records"]


def success(recs):
    return np.array([[e.success for e in r.episodes] for r in recs])


def test_results_do_not_depend_on_worker_count(tmp_path):
    suites = ["id", "nonstationary", "ood-slippery", "stitching"]
    one = evaluate(AgentSpec("explorer"), suites, tmp_path / "w1", trials=6, seed=3, progress=False)
    two = evaluate(AgentSpec("explorer"), suites, tmp_path / "w2", trials=6, seed=3, workers=2, progress=False)
    assert records(tmp_path / "w1") == records(tmp_path / "w2")
    for s in suites:
        assert one["summary"][s]["auc"] == two["summary"][s]["auc"]
    three = evaluate(AgentSpec("explorer"), ["id"], tmp_path / "w3", trials=6, seed=4, progress=False)
    assert records(tmp_path / "w3")["id"] != records(tmp_path / "w1")["id"]  # the seed matters


def test_resume_after_interruption_gives_the_uninterrupted_results(tmp_path, monkeypatch):
    spec = AgentSpec(f"{TEST_AGENTS}:InterruptedExplorer")
    evaluate(spec, ["id", "ood-permuted"], tmp_path / "ref", trials=5, progress=False)
    monkeypatch.setenv("ICRL_TEST_INTERRUPT_AT", "3")  # counted per agent object: each suite builds one
    with pytest.raises(KeyboardInterrupt):
        evaluate(spec, ["id", "ood-permuted"], tmp_path / "cut", trials=5, progress=False)
    part = next((tmp_path / "cut" / "parts").glob("*.jsonl"))
    assert len(part.read_text().splitlines()) == 2  # the two finished trials are on disk
    with open(part, "a") as f:
        f.write('{"suite": "id", "tri')  # a write cut short by a crash
    monkeypatch.delenv("ICRL_TEST_INTERRUPT_AT")
    with pytest.raises(EvaluationError, match="--resume"):
        evaluate(spec, ["id", "ood-permuted"], tmp_path / "cut", trials=5, progress=False)
    with pytest.raises(EvaluationError, match="different settings"):
        evaluate(spec, ["id", "ood-permuted"], tmp_path / "cut", trials=5, seed=1, resume=True, progress=False)
    evaluate(spec, ["id", "ood-permuted"], tmp_path / "cut", trials=5, resume=True, progress=False)
    assert records(tmp_path / "cut") == records(tmp_path / "ref")


@pytest.mark.parametrize(
    "name, message",
    [
        ("Raising", r"suite 'id', trial 0, episode 0, step 0: the agent raised ZeroDivisionError: boom"),
        ("Invalid", r"suite 'id', trial 0, episode 0, step 0: the agent returned the invalid action 7"),
        ("Slow", r"the agent took longer than the per-step limit of 0.2 s"),
    ],
)
def test_faulty_agents_get_a_clear_error(name, message):
    agent = AgentSpec(f"{TEST_AGENTS}:{name}").build()
    with pytest.raises(AgentError, match=message):
        list(run_trials(agent, SUITES["id"], [0], options=ProtocolOptions(step_timeout=0.2)))


def test_invalid_actions_can_be_replaced_and_counted():
    agent = AgentSpec(f"{TEST_AGENTS}:Invalid").build()
    recs = list(run_trials(agent, SUITES["id"], [0, 1], options=ProtocolOptions(on_invalid_action="random")))
    assert sum(e.invalid_actions for r in recs for e in r.episodes) == sum(e.steps for r in recs for e in r.episodes)


def test_batched_agents_match_their_single_version_for_any_batch_size():
    single = list(run_trials(AgentSpec("explorer").build(), SUITES["ood-large"], range(7)))
    for size in (1, 3, 7):
        batched = AgentSpec(f"{TEST_AGENTS}:BatchedExplorer").build()
        recs = list(run_trials(batched, SUITES["ood-large"], range(7), options=ProtocolOptions(batch_size=size)))
        recs.sort(key=lambda r: r.trial)  # yielded as they finish
        assert [r.episodes for r in recs] == [r.episodes for r in single]


def test_forced_exploration_follows_the_paper_schedule():
    recs = list(run_trials(AgentSpec("oracle").build(), SUITES["id"], range(20), options=ProtocolOptions(forced_exploration="paper")))
    forced = np.array([[e.forced_random for e in r.episodes] for r in recs])
    steps = np.array([[e.steps for e in r.episodes] for r in recs])
    assert (forced[:, :2] == steps[:, :2]).all()  # episodes 1-2: every action random
    assert forced[:, 20:].sum() == 0  # last ten: the agent's own
    assert 0 < forced[:, 2:20].sum() < steps[:, 2:20].sum()
    assert success(recs)[:, 20:].mean() == 1.0


@pytest.mark.parametrize("suite", [s for s in SUITES if s != "ood-slippery"])
def test_oracle_scores_one_on_deterministic_suites(suite):
    recs = list(run_trials(AgentSpec("oracle").build(), SUITES[suite], range(15)))
    assert success(recs).mean() == 1.0
    assert all(e.steps == e.shortest for r in recs for e in r.episodes)


def test_oracle_on_slippery_maps_matches_its_exact_success_probability():
    recs = list(run_trials(AgentSpec("oracle").build(), SUITES["ood-slippery"], range(100)))
    optimal = np.mean([e.optimal for r in recs for e in r.episodes])
    assert abs(success(recs).mean() - optimal) < 0.03  # 3000 episodes: standard error ~0.005


def test_random_agent_matches_the_calibration():
    recs = list(run_trials(AgentSpec("random").build(), SUITES["id"], range(100)))
    assert abs(success(recs).mean() - 0.153) < 0.03  # PAPER.md: ~15.3% per episode on ID maps


def test_agent_specs_resolve_every_documented_form():
    assert type(AgentSpec("qlearning", {"alpha": 0.5}).build()).__name__ == "QLearningAgent"
    assert AgentSpec("qlearning", {"alpha": 0.5}).build().alpha == 0.5
    assert type(AgentSpec("icrl_bench.baselines.explorer:ExplorerAgent").build()).__name__ == "ExplorerAgent"
    assert type(AgentSpec(f"{TEST_AGENTS}:make_explorer").build()).__name__ == "ExplorerAgent"
    assert type(AgentSpec(f"{TEST_AGENTS}:EXPLORER_INSTANCE").build()).__name__ == "ExplorerAgent"
    for spec, message in [
        (AgentSpec("nonsense"), "unknown agent 'nonsense'"),
        (AgentSpec("icrl_bench.nope:Agent"), "cannot import module"),
        (AgentSpec("icrl_bench.baselines:Nope"), "has no attribute"),
        (AgentSpec("missing_file.py:Agent"), "does not exist"),
        (AgentSpec("icrl_bench.protocol.suites:get_suite"), "cannot build agent"),
        (AgentSpec("json:dumps", {}), "cannot build agent"),
        (AgentSpec(f"{TEST_AGENTS}:EXPLORER_INSTANCE", {"a": 1}), "takes no --agent-arg"),
        (AgentSpec("qlearning", {"alpha": 5}), "alpha must be in"),
    ]:
        with pytest.raises((AgentSpecError, ValueError), match=message):
            spec.build()
    with pytest.raises(AgentSpecError, match="not both"):
        AgentSpec("random", command="python x.py")


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "icrl_bench.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_file_agent_and_external_process_agent_end_to_end(tmp_path):
    result = cli("evaluate", "examples/my_agent.py:GoRightThenDown", "--suites", "id,stitching-paper", "--trials", "4",
                 "--out", str(tmp_path / "file"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "stitching-paper" in result.stdout and (tmp_path / "file" / "curves.png").exists()
    cmd = f"{sys.executable} examples/random_agent.py"
    result = cli("evaluate", "--agent-cmd", cmd, "--suites", "id", "--trials", "5", "--out", str(tmp_path / "ext"))
    assert result.returncode == 0, result.stderr
    ext = records(tmp_path / "ext")["id"]
    ref = evaluate(AgentSpec("random"), ["id"], tmp_path / "ref", trials=5, progress=False)
    assert ref and len(ext) == 5 and all(len(r["episodes"]) == 30 for r in ext)
    summary = (tmp_path / "ext" / "summary.csv").read_text()
    assert summary.startswith("suite,metric,value,ci_low,ci_high") and "id,auc," in summary
    episodes = (tmp_path / "ext" / "episodes.csv").read_text().splitlines()
    assert len(episodes) == 1 + 5 * 30


def test_cli_reports_agent_errors_and_keeps_finished_trials(tmp_path):
    result = cli("evaluate", f"{TEST_AGENTS}:Invalid", "--suites", "id", "--trials", "2", "--out", str(tmp_path / "bad"))
    assert result.returncode == 2
    assert "invalid action 7" in result.stderr and "--resume" in result.stderr
    result = cli("evaluate", "--agent-cmd", f"{sys.executable} -c 'print(1)'", "--suites", "id", "--trials", "1",
                 "--out", str(tmp_path / "dead"))  # fmt: skip
    assert result.returncode == 2 and "agent process" in result.stderr
    result = cli("evaluate", "explorer", "--suites", "nope", "--out", str(tmp_path / "x"))
    assert result.returncode == 2 and "unknown suite 'nope'" in result.stderr


def test_results_json_holds_everything_needed(tmp_path):
    results = evaluate(AgentSpec("qlearning", {"alpha": 0.8}), ["nonstationary"], tmp_path / "q", trials=3, seed=5, progress=False)
    data = json.loads((tmp_path / "q" / "results.json").read_text())
    assert data["agent"] == {"name": "qlearning", "kwargs": {"alpha": 0.8}, "command": None, "label": "qlearning"}
    assert data["suites"]["nonstationary"]["hash"] == SUITES["nonstationary"].hash
    assert data["seed"] == 5 and data["protocol"]["forced_exploration"] == "none"
    assert data["package_version"] and data["schema_version"] == 1
    rec = data["records"]["nonstationary"][0]
    assert len(rec["task_ids"]) == 2 and len(rec["episodes"]) == 60
    assert {"drop", "recovery_episodes"} <= set(results["summary"]["nonstationary"])
