"""The leaderboard: validation (with a fuzzer), submission, verification, rendering (in a real browser)."""

import collections
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from icrl_bench.agents import AgentSpec
from icrl_bench.leaderboard.mutations import MUTATIONS, mutants
from icrl_bench.leaderboard.render import render
from icrl_bench.leaderboard.submission import SubmissionError, load_meta, submit, validate_board
from icrl_bench.leaderboard.validate import validate_results
from icrl_bench.leaderboard.verify import verify, welch_p_value
from icrl_bench.protocol import evaluate

SUITES = ["id", "nonstationary", "ood-slippery", "stitching"]
META = {"authors": "Tests", "code_url": "https://example.org/code", "model_size": "0", "open_weights": True}


@pytest.fixture(scope="module")
def results_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("explorer")
    evaluate(AgentSpec("explorer"), SUITES, out, trials=3, progress=False)
    return out / "results.json"


@pytest.fixture
def results(results_file):
    return json.loads(results_file.read_text())


def test_valid_results_pass(results):
    assert validate_results(results) == []


def test_every_mutation_is_rejected(results):
    submission = {"submission_schema": 1, "meta": {}, "results": results, "verification": None}
    tried = collections.Counter()
    for kind, description, mutant in mutants(submission, 320, seed=7):
        tried[kind] += 1
        problems = validate_results(mutant["results"])
        assert problems, f"accepted a mutant: {kind}: {description}"
        assert not any("could not be checked" in p for p in problems), problems
    assert set(tried) == set(MUTATIONS) and min(tried.values()) == 40


def test_problems_name_the_file_trial_and_what_is_wrong(results):
    results["records"]["id"].pop(1)
    results["records"]["stitching"][0]["episodes"][2]["steps"] = 0
    results["suites"]["nonstationary"]["hash"] = "0" * 16
    problems = validate_results(results, "sub.json")
    assert "sub.json: suite 'id': trials [1] are missing" in problems
    assert any(p.startswith("sub.json: suite 'stitching', trial 0, episode 2: 0 steps, outside 1..100") for p in problems)
    assert any("suite 'nonstationary': hash is '0000000000000000'" in p for p in problems)
    assert len(problems) >= 3  # all problems, not only the first


def test_impossible_but_self_consistent_episodes_are_caught(results):
    from icrl_bench.leaderboard.mutations import _recompute

    submission = {"results": results}
    episode = results["records"]["id"][0]["episodes"][0]
    episode.update(success=1, truncated=False, steps=episode["shortest"] - 1)
    _recompute(submission, "id")  # the summary agrees with the doctored records
    problems = validate_results(results)
    assert any("fewer than the shortest path" in p for p in problems)


def test_submit_writes_once_and_refuses_duplicates(results_file, tmp_path):
    board = tmp_path / "board"
    path = submit(results_file, "My Agent v1", META, board)
    assert path == board / "submissions" / "my-agent-v1.json"
    data = json.loads(path.read_text())
    assert data["meta"]["name"] == "My Agent v1" and data["verification"] is None
    with pytest.raises(SubmissionError, match="already on the board"):
        submit(results_file, "Another name", META, board)
    with pytest.raises(SubmissionError, match="already exists"):
        submit(results_file, "my agent  v1", META, board)
    with pytest.raises(SubmissionError, match="meta field 'authors' is required"):
        submit(results_file, "No authors", {}, board)
    assert validate_board(sorted((board / "submissions").glob("*.json"))) == []
    copy = board / "submissions" / "copy.json"
    shutil.copy(path, copy)
    assert any("duplicate submission" in p for p in validate_board([path, copy]))
    broken = tmp_path / "broken.json"
    broken.write_text(results_file.read_text()[:1000])
    with pytest.raises(SubmissionError, match="not valid JSON"):
        submit(broken, "Broken", META, board)
    assert path.read_text() == json.dumps(data, separators=(",", ":")) + "\n"  # nothing written was lost


def test_meta_files(tmp_path):
    (tmp_path / "m.yaml").write_text("authors: A. Person  # the team\nmodel_size: 800000\nopen_weights: false\n")
    assert load_meta(tmp_path / "m.yaml") == {"authors": "A. Person", "model_size": 800000, "open_weights": False}
    (tmp_path / "bad.yaml").write_text("authors:\n  - nested\n")
    with pytest.raises(SubmissionError, match="line 2: use flat"):
        load_meta(tmp_path / "bad.yaml")


def test_welch_p_value():
    import numpy as np

    same = np.array([0.5, 0.6, 0.7, 0.8])
    assert welch_p_value(same, same.copy()) == 1.0
    assert welch_p_value(np.ones(10), np.zeros(10)) == 0.0
    assert welch_p_value(np.ones(10), np.ones(10)) == 1.0
    assert 0.0 < welch_p_value(same, same + 0.1) < 1.0


def test_verify_confirms_an_honest_entry_and_exposes_a_false_one(results_file, tmp_path):
    board = tmp_path / "board"
    path = submit(results_file, "explorer", META, board)
    block = verify(path, AgentSpec("explorer"), "s3cret", trials=20)
    assert block["verified"], block
    assert block["seed_sha256"] != "s3cret" and len(block["seed_sha256"]) == 64
    assert block["trials"] == {s: 20 for s in SUITES}
    assert json.loads(path.read_text())["verification"] == block
    assert validate_board([path]) == []
    block = verify(path, AgentSpec("random"), "s3cret", trials=20)  # not the agent that made these results
    assert not block["verified"]
    assert block["suites"]["id"]["difference"] < -0.5 and not block["suites"]["id"]["consistent"]


def test_render_ranks_entries_and_writes_a_self_contained_page(tmp_path):
    board = tmp_path / "board"
    for name in ("random", "explorer", "oracle"):
        out = tmp_path / name
        evaluate(AgentSpec(name), ["id", "stitching"], out, trials=3, progress=False)
        submit(out / "results.json", f"baseline: {name}", META, board)
    readme, page = render(board)
    table = [line for line in readme.read_text().splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[1] for row in table[1:]] == ["baseline: explorer", "baseline: random", "baseline: oracle"]
    assert table[3].startswith("| ceiling |")
    text = page.read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", text)  # nothing to fetch: opens offline


def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (.ci/run does) for the browser test")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


def test_page_in_a_real_headless_browser(tmp_path):
    browser = chromium()
    board = tmp_path / "board"
    for name, trials in (("random", 3), ("explorer", 4), ("qlearning", 5)):
        out = tmp_path / name
        evaluate(AgentSpec(name), ["id", "nonstationary", "stitching"], out, trials=trials, progress=False)
        submit(out / "results.json", name, META, board)
    _, page = render(board)
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
         page.resolve().as_uri() + "#selftest"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = re.search(r'<pre id="selftest-result">(.*?)</pre>', result.stdout, re.S)
    assert found, result.stderr[-2000:]
    report = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert report["errors"] == []  # no console errors
    assert report["checks"] == {
        "rows": True, "sorted_descending": True, "sorted_ascending": True, "sorted_by_name": True,
        "curves": True, "filter": True,
    }  # fmt: skip
    assert report["ok"]


def test_cli_validate_lists_every_problem(results_file, tmp_path):
    board = tmp_path / "board"
    path = submit(results_file, "cli entry", META, board)
    data = json.loads(path.read_text())
    data["results"]["records"]["id"].pop(0)
    data["meta"].pop("authors")
    path.write_text(json.dumps(data))
    run = subprocess.run([sys.executable, "-m", "icrl_bench.cli", "leaderboard", "validate", "--board", str(board)],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 1
    assert "meta field 'authors' is required" in run.stdout and "trials [0] are missing" in run.stdout
    assert "1 file(s), " in run.stdout


def test_the_committed_leaderboard_is_valid_and_verified():
    root = Path(__file__).resolve().parents[1] / "leaderboard"
    paths = sorted((root / "submissions").glob("*.json"))
    assert {p.stem for p in paths} >= {"baseline-random", "baseline-qlearning", "baseline-explorer", "baseline-oracle"}
    assert validate_board(paths) == []
    for path in paths:
        assert json.loads(path.read_text())["verification"]["verified"], path
