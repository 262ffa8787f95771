"""The protocol end to end: determinism, resume, faulty agents, agent specs, baselines' anchor numbers."""

import dataclasses
import json
import os
import subprocess
import sys
import time
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
        ("Exiting", r"suite 'id', trial 0, episode 0, step 0: the agent called exit\(3\)"),
        ("Interrupting", r"trial 0, episode 0, step 0: the agent raised KeyboardInterrupt \(no Ctrl-C was pressed\)"),
        ("NoneBatch", r"act_batch returned None; expected a sequence of 1 actions"),
        ("Slow", r"suite 'id', trial 0, episode 0, step 0: the agent took longer than the per-step limit of 0.2 s"),
        ("BusyLoop", r"took longer than the per-step limit of 0.2 s"),
        ("RetryingHang", r"took longer than the per-step limit of 0.2 s"),
    ],
)
def test_faulty_agents_get_a_clear_error(name, message):
    agent = AgentSpec(f"{TEST_AGENTS}:{name}").build()
    start = time.perf_counter()
    with pytest.raises(AgentError, match=message):
        list(run_trials(agent, SUITES["id"], [0], options=ProtocolOptions(step_timeout=0.2, batch_size=1)))
    assert time.perf_counter() - start < 2.0  # interrupted, not merely noticed after the agent returned


@pytest.mark.parametrize(
    "script, message",
    [("never_answers.py", "took longer than the per-step limit"), ("chatty.py", "without being asked")],
)
def test_misbehaving_external_processes_are_stopped(script, message):
    agent = AgentSpec(command=f"{sys.executable} {Path(__file__).parent / 'external' / script}").build()
    start = time.perf_counter()
    with pytest.raises(AgentError, match=message):
        list(run_trials(agent, SUITES["id"], [0, 1], options=ProtocolOptions(step_timeout=0.5)))
    agent.close()
    assert time.perf_counter() - start < 5.0 and agent.proc.poll() is not None


def test_only_declared_privileged_agents_see_the_map(tmp_path):
    assert AgentSpec("oracle").privileged and not AgentSpec("explorer").privileged
    assert not AgentSpec(f"{TEST_AGENTS}:SneakyPrivileged").privileged
    results = evaluate(AgentSpec(f"{TEST_AGENTS}:SneakyPrivileged"), ["id"], tmp_path / "s", trials=2, progress=False)
    assert results["agent"]["privileged"] is False
    assert evaluate(AgentSpec("oracle"), ["id"], tmp_path / "o", trials=2, progress=False)["agent"]["privileged"]


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


def test_forced_exploration_restarts_after_the_change():
    recs = list(run_trials(AgentSpec("oracle").build(), SUITES["nonstationary"], range(10), options=ProtocolOptions(forced_exploration="paper")))
    forced = np.array([[e.forced_random for e in r.episodes] for r in recs])
    steps = np.array([[e.steps for e in r.episodes] for r in recs])
    assert (forced[:, 30:32] == steps[:, 30:32]).all() and forced[:, 20:30].sum() == 0 and forced[:, 50:].sum() == 0


def test_forced_exploration_follows_the_paper_schedule():
    recs = list(run_trials(AgentSpec("oracle").build(), SUITES["id"], range(20), options=ProtocolOptions(forced_exploration="paper")))
    forced = np.array([[e.forced_random for e in r.episodes] for r in recs])
    steps = np.array([[e.steps for e in r.episodes] for r in recs])
    assert (forced[:, :2] == steps[:, :2]).all()  # episodes 1-2: every action random
    assert forced[:, 20:].sum() == 0  # last ten: the agent's own
    assert 0 < forced[:, 2:20].sum() < steps[:, 2:20].sum()
    assert success(recs)[:, 20:].mean() == 1.0


def test_runner_and_validator_agree_on_greedy_only_suites():
    from icrl_bench.leaderboard.validate import _check_forced_exploration

    assert [name for name, s in SUITES.items() if s.greedy_only] == ["stitching-paper", "stitching"]
    paper = ProtocolOptions(forced_exploration="paper")
    greedy = SUITES["stitching"]
    explored = dataclasses.replace(greedy, greedy_only=False)  # same name, same hash: only the field differs
    assert explored.hash == greedy.hash
    played = {s.greedy_only: list(run_trials(AgentSpec("random").build(), s, range(5), options=paper))
              for s in (greedy, explored)}  # fmt: skip
    assert sum(e.forced_random for r in played[True] for e in r.episodes) == 0
    assert sum(e.forced_random for r in played[False] for e in r.episodes) > 0  # episodes 1-2 are all random

    def problems(suite, recs):
        out = []
        for r in recs:
            _check_forced_exploration(suite, r, paper.to_dict(), f"trial {r.trial}", out.append)
        return out

    assert problems(greedy, played[True]) == [] and problems(explored, played[False]) == []
    assert problems(greedy, played[False]) and problems(explored, played[True])  # and each rejects the other's


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
    evaluate(AgentSpec("random"), ["id"], tmp_path / "ref", trials=5, progress=False)
    assert ext == records(tmp_path / "ref")["id"]  # the example is the built-in random agent over the pipe
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
    assert data["agent"] == {
        "name": "qlearning", "kwargs": {"alpha": 0.8}, "command": None, "privileged": False, "label": "qlearning"
    }  # fmt: skip
    assert data["suites"]["nonstationary"]["hash"] == SUITES["nonstationary"].hash
    assert data["seed"] == 5 and data["protocol"]["forced_exploration"] == "none"
    assert data["package_version"] and data["schema_version"] == 1
    rec = data["records"]["nonstationary"][0]
    assert len(rec["task_ids"]) == 2 and len(rec["episodes"]) == 60
    assert {"drop", "recovery_episodes"} <= set(results["summary"]["nonstationary"])
    from icrl_bench.leaderboard.validate import validate_results

    assert validate_results(data) == []  # every summary number recomputes from the records alone


def test_suites_are_pinned_and_evaluation_maps_listed():
    # Versioned suites: a change to a task list must come with a new version (and a new hash here).
    assert {name: s.hash for name, s in SUITES.items()} == {
        "id": "8cafb15ab8f44355", "ood-large": "5616f87dce1fed0f", "ood-xl": "25d29909dc77fb7b",
        "ood-dense": "06fa1e57ac6bf5af", "ood-slippery": "58d375326a2699ae", "ood-permuted": "926d117f34a52fd1",
        "nonstationary": "23449ac324ba4ca7", "stitching-paper": "5460bbba6ea12604", "stitching": "88f465782b21ebfb",
    }  # fmt: skip
    from icrl_bench.protocol import evaluation_map_ids
    from icrl_bench.protocol.suites import training_suite

    ids = evaluation_map_ids()
    assert SUITES["id"].tasks[0][0].map_id in ids and SUITES["nonstationary"].tasks[5][1].map_id in ids
    train = training_suite("id", 50)
    assert train.hash != SUITES["id"].hash
    assert sum(t.map_id in ids for trial in train.tasks for t in trial) <= 2  # rare collisions of tiny maps only


def test_resume_rejects_foreign_records_and_allows_a_new_time_limit(tmp_path):
    import shutil

    evaluate(AgentSpec("explorer"), ["id"], tmp_path / "a", trials=2, seed=1, progress=False)
    evaluate(AgentSpec("explorer"), ["id"], tmp_path / "b", trials=3, seed=0, progress=False)
    for part in (tmp_path / "a" / "parts").glob("*.jsonl"):
        shutil.copy(part, tmp_path / "b" / "parts" / "trials-foreign.jsonl")
    with pytest.raises(EvaluationError, match="does not belong to this run: its seeds"):
        evaluate(AgentSpec("explorer"), ["id"], tmp_path / "b", trials=3, seed=0, resume=True, progress=False)
    evaluate(AgentSpec("explorer"), ["id"], tmp_path / "c", trials=2, progress=False)
    again = evaluate(AgentSpec("explorer"), ["id"], tmp_path / "c", trials=2, resume=True, progress=False,
                     options=ProtocolOptions(step_timeout=30, batch_size=7))  # fmt: skip
    assert again["protocol"]["step_timeout"] == 30


def test_kill_minus_nine_with_workers_then_resume(tmp_path):
    import signal as sig

    evaluate(AgentSpec("explorer"), ["id", "ood-large"], tmp_path / "ref", trials=40, progress=False)
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "icrl_bench.cli", "evaluate", f"{TEST_AGENTS}:SlowExplorer", "--suites", "id,ood-large",
         "--trials", "40", "--workers", "2", "--out", str(out)],
        cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 60
    while time.time() < deadline:
        parts = list((out / "parts").glob("*.jsonl")) if (out / "parts").exists() else []
        if sum(len(p.read_text().splitlines()) for p in parts) >= 10:
            break
        time.sleep(0.1)
    os.killpg(proc.pid, sig.SIGKILL)
    proc.wait()
    finished = sum(len(p.read_text().splitlines()) for p in (out / "parts").glob("*.jsonl"))
    assert 10 <= finished < 80
    evaluate(AgentSpec(f"{TEST_AGENTS}:SlowExplorer"), ["id", "ood-large"], out, trials=40, workers=2, resume=True, progress=False)
    assert records(out) == records(tmp_path / "ref")


def test_cli_default_folder_is_continued_when_the_settings_match(tmp_path):
    args = ["evaluate", "random", "--suites", "stitching-paper", "--trials", "3"]
    assert cli(*args, cwd=tmp_path).returncode == 0
    again = cli(*args, cwd=tmp_path)  # the README's main command, run twice
    assert again.returncode == 0 and "stitching-paper" in again.stdout
    other = cli(*args[:-1], "4", cwd=tmp_path)
    assert other.returncode == 2 and "different settings" in other.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_a_batched_run_says_after_its_first_step_how_long_it_takes_at_most(tmp_path, capsys, workers):
    from icrl_bench.protocol.evaluation import evaluate

    spec = AgentSpec("tests/agents_for_tests.py:BatchedExplorer")
    evaluate(spec, ["id", "stitching-paper"], tmp_path / "a", trials=4, workers=workers, progress=False, forecast=True)
    note = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: first step")]
    # One note, naming the batch and the bound of a trial (30 episodes x 100 steps on id, 5 x 100 on stitching).
    assert len(note) == 1 and "trial(s) at once" in note[0] and f"({workers} worker(s))" in note[0]
    assert "has at most 3,000 steps" in note[0] or "has at most 500 steps" in note[0]
    evaluate(spec, ["id"], tmp_path / "b", trials=4, workers=workers, progress=False)
    assert "first step" not in capsys.readouterr().err  # only when asked (the CLI asks unless --no-progress)
