"""The leaderboard: validation (with a fuzzer), submission, verification, rendering (in a real browser)."""

import collections
import json
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
from icrl_bench.protocol import ProtocolOptions, evaluate

SUITES = ["id", "nonstationary", "ood-slippery", "stitching"]
META = {"authors": "Tests", "code_url": "https://example.org/code", "model_size": "0", "open_weights": True}


@pytest.fixture(scope="module")
def key():
    """A verifier's private key for the tests (boards commit its public key with `commit_key`)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # fixed: verification seeds are stable


def commit_key(board, key):
    """Put the public half of `key` in BOARD/keys, as a maintainer commits it."""
    from cryptography.hazmat.primitives import serialization

    from icrl_bench.leaderboard.signing import key_id

    folder = Path(board) / "keys"
    folder.mkdir(parents=True, exist_ok=True)
    public = key.public_key()
    (folder / f"{key_id(public)}.pem").write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    trusted = Path(board) / "trusted_keys.json"
    listed = json.loads(trusted.read_text()) if trusted.exists() else {"keys": {}}
    listed["keys"][key_id(public)] = {"holder": "tests", "added": "2026-12-03", "status": "active"}
    trusted.write_text(json.dumps(listed))


def test_every_key_on_the_board_is_listed_in_its_trusted_keys_file(tmp_path):
    import shutil

    from icrl_bench.leaderboard.submission import trusted_key_problems

    board = Path(__file__).parents[1] / "leaderboard"
    assert trusted_key_problems(board) == []
    assert "/leaderboard/keys/" in (board.parent / ".github" / "CODEOWNERS").read_text()
    copy = tmp_path / "board"
    shutil.copytree(board, copy)
    (copy / "keys" / "0123456789abcdef.pem").write_text((board / "keys" / "21895dbdc35c6688.pem").read_text())
    assert any("0123456789abcdef.pem is not listed" in p for p in trusted_key_problems(copy))


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    """3 trials per suite: fast to validate many times (the fuzzer)."""
    out = tmp_path_factory.mktemp("explorer-small")
    evaluate(AgentSpec("explorer"), SUITES, out, trials=3, progress=False)
    return out / "results.json"


@pytest.fixture(scope="module")
def results_file(tmp_path_factory):
    """Whole suites under seed 0: what a leaderboard entry must be."""
    out = tmp_path_factory.mktemp("explorer")
    evaluate(AgentSpec("explorer"), SUITES, out, progress=False)
    return out / "results.json"


def random_results(tmp_path):
    """Whole suites of the random agent (a claim far below the explorer's)."""
    evaluate(AgentSpec("random"), SUITES, tmp_path / "random", progress=False)
    return tmp_path / "random" / "results.json"


@pytest.fixture
def results(small_file):
    return json.loads(small_file.read_text())


def test_valid_results_pass(results):
    assert validate_results(results) == []


@pytest.mark.parametrize("protocol", ["none", "paper"])
def test_every_mutation_is_rejected(results, tmp_path, protocol):
    if protocol == "paper":
        out = tmp_path / "paper"
        evaluate(AgentSpec("explorer"), SUITES, out, trials=3, progress=False,
                 options=ProtocolOptions(forced_exploration="paper"))  # fmt: skip
        results = json.loads((out / "results.json").read_text())
        assert validate_results(results) == []
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


def test_board_rules_whole_suites_and_seed_zero(small_file, tmp_path):
    with pytest.raises(SubmissionError, match="entries need at least 30"):
        submit(small_file, "too few trials", META, tmp_path / "board")
    out = tmp_path / "seeded"
    evaluate(AgentSpec("random"), ["stitching-paper"], out, seed=5, progress=False)
    with pytest.raises(SubmissionError, match="use evaluation seed 0"):
        submit(out / "results.json", "seed shopping", META, tmp_path / "board")


def test_meta_links_must_be_safe():
    from icrl_bench.leaderboard.submission import validate_meta

    assert validate_meta({"name": "a", "authors": "b", "code_url": "https://x.org/a?b=1"}, "f") == []
    assert validate_meta({"name": "a", "authors": "b", "code_url": "../icrl_bench/baselines"}, "f") == []
    for bad in ("javascript:alert(1)", "data:text/html,x", "//evil.org", "https://x.org/<script>"):
        assert validate_meta({"name": "a", "authors": "b", "code_url": bad}, "f"), bad
    assert validate_meta({"name": "a\nb", "authors": "b"}, "f")


def test_submit_writes_once_and_refuses_duplicates(results_file, tmp_path):
    board = tmp_path / "board"
    path = submit(results_file, "My Agent v1", META, board)
    assert path == board / "submissions" / "my-agent-v1.json"
    data = json.loads(path.read_text())
    assert data["meta"]["name"] == "My Agent v1" and data["verification"] is None
    with pytest.raises(SubmissionError, match="already on the board"):
        submit(results_file, "Another name", META, board)
    relabelled = tmp_path / "relabelled.json"
    data_r = json.loads(results_file.read_text())
    data_r["agent"]["label"] = "something else"
    relabelled.write_text(json.dumps(data_r))
    with pytest.raises(SubmissionError, match="already on the board"):
        submit(relabelled, "Relabelled", META, board)
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
    (tmp_path / "q.yaml").write_text('authors: "Team # 1"\n')
    assert load_meta(tmp_path / "q.yaml") == {"authors": "Team # 1"}
    (tmp_path / "twice.yaml").write_text("authors: a\nauthors: b\n")
    with pytest.raises(SubmissionError, match="given twice"):
        load_meta(tmp_path / "twice.yaml")
    (tmp_path / "twice.json").write_text('{"authors": "a", "authors": "b"}')
    with pytest.raises(SubmissionError, match="duplicate key"):
        load_meta(tmp_path / "twice.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SubmissionError, match="not valid JSON"):
        load_meta(tmp_path / "bin.json")


def test_the_verdict_tests_overstatement_only():
    import numpy as np

    from icrl_bench.leaderboard.verify import overstatement_p_value

    rng = np.random.default_rng(0)
    claim = rng.uniform(0.3, 0.5, 100)
    assert overstatement_p_value(claim, claim + 0.3) > 0.99  # the re-run did better: no sign of overstatement
    assert overstatement_p_value(claim + 0.3, claim) < 1e-6  # the claim is far above the re-run
    assert 0.4 < overstatement_p_value(claim, claim.copy()) <= 0.5 + 1e-9
    assert overstatement_p_value(np.ones(5), np.zeros(5)) == 0.0 and overstatement_p_value(np.zeros(5), np.ones(5)) == 1.0


def test_welch_p_value():
    import numpy as np

    same = np.array([0.5, 0.6, 0.7, 0.8])
    assert welch_p_value(same, same.copy()) == 1.0
    assert welch_p_value(np.ones(10), np.zeros(10)) == 0.0
    assert welch_p_value(np.ones(10), np.ones(10)) == 1.0
    assert 0.0 < welch_p_value(same, same + 0.1) < 1.0


def test_verify_confirms_an_honest_entry_and_exposes_a_false_one(results_file, tmp_path, key):
    board = tmp_path / "board"
    path = submit(results_file, "explorer", META, board)
    quick = verify(path, AgentSpec("explorer"), key, trials=20)
    assert all(r["consistent"] for r in quick["suites"].values()) and not quick["verified"]  # a quick check
    assert "never a verification" in quick["test"] and quick["trials"] == {s: 20 for s in SUITES}
    block = verify(path, AgentSpec("explorer"), key)
    assert block["verified"] and block["isolated"], block
    assert len(block["seed_sha256"]) == 64 and len(block["signature"]) == 88
    assert block["trials"] == {s: 100 for s in SUITES}
    assert json.loads(path.read_text())["verification"] == block
    # Only a key the board commits makes a block count.
    assert any("not among the board's committed keys" in p for p in validate_board([path], board))
    commit_key(board, key)
    assert validate_board([path], board) == []
    block = verify(path, AgentSpec("random"), key, trials=20)  # not the agent that made these results
    assert not block["verified"]
    assert block["suites"]["id"]["difference"] < -0.5 and not block["suites"]["id"]["consistent"]
    assert validate_board([path], board) == []  # a signed "not verified" is a valid entry, shown unverified
    # An entry that claims less than its agent does is not overstated: a better re-run never fails it.
    modest = submit(random_results(tmp_path), "modest", META, board)
    better = verify(modest, AgentSpec("explorer"), key, trials=20)
    assert better["suites"]["id"]["difference"] > 0.5 and all(r["consistent"] for r in better["suites"].values())


def test_verification_blocks_cannot_be_forged_or_edited(results_file, tmp_path, key):
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from icrl_bench.leaderboard.signing import sign_block

    board = tmp_path / "board"
    commit_key(board, key)
    path = submit(results_file, "explorer", META, board)
    verify(path, AgentSpec("random"), key)  # signed, and honestly "not verified"
    original = json.loads(path.read_text())
    assert original["verification"]["verified"] is False

    def problems_after(edit):
        data = json.loads(json.dumps(original))
        edit(data)
        path.write_text(json.dumps(data))
        return validate_board([path], board)

    def flip(data):
        data["verification"]["verified"] = True

    def redate(data):
        data["verification"]["date"] = "2030-01-01"

    def rereport(data):
        data["verification"]["suites"]["id"]["consistent"] = True

    def unprivilege(data):
        data["results"]["agent"]["privileged"] = True

    def rename(data):
        data["meta"]["name"] = "explorer (official)"

    def reorder(data):  # canonical order: reordering alone does not break the signature ...
        data["results"]["records"]["id"].reverse()

    def own_key(data):  # ... but a block signed with any key the board does not commit does not count
        forged = {k: v for k, v in data["verification"].items() if k not in ("key_id", "entry_hash", "signature")}
        forged["verified"] = True
        data["verification"] = sign_block(forged, data, ed25519.Ed25519PrivateKey.generate())

    for edit, expected in ((flip, "signature does not check"), (redate, "signature does not check"),
                           (rereport, "signature does not check"), (rename, "changed after it was verified"),
                           (unprivilege, "changed after it was verified"),
                           (own_key, "not among the board's committed keys")):  # fmt: skip
        found = problems_after(edit)
        assert any(expected in p for p in found), (edit.__name__, found)
    assert problems_after(reorder) == []
    assert problems_after(lambda d: d.update(verification=None)) == []  # the claim removed: a valid, unverified entry
    assert any("date must be YYYY-MM-DD" in p for p in problems_after(
        lambda d: d["verification"].update(date="<img src=x onerror=alert(1)>")))


def test_duplicates_are_found_whatever_the_order(results_file, tmp_path):
    board = tmp_path / "board"
    submit(results_file, "explorer", META, board)
    data = json.loads(results_file.read_text())
    for suite in data["records"]:
        data["records"][suite].reverse()
    data["records"] = dict(reversed(list(data["records"].items())))
    data["agent"].update(name="mine:Agent", label="mine")
    (tmp_path / "reordered.json").write_text(json.dumps(data, sort_keys=True))
    with pytest.raises(SubmissionError, match="already on the board"):
        submit(tmp_path / "reordered.json", "a new entry", META, board)
    data["records"]["id"][0]["episodes"][0]["optimal"] += 1e-10  # within validation's tolerance: free digits
    (tmp_path / "nudged.json").write_text(json.dumps(data))
    with pytest.raises(SubmissionError, match="already on the board"):
        submit(tmp_path / "nudged.json", "another new entry", META, board)
    with pytest.raises(SubmissionError, match="the metadata names the entry 'x' but --name says 'y'"):
        submit(results_file, "y", {**META, "name": "x"}, board)


def test_an_agent_shown_the_map_cannot_verify_an_unprivileged_entry(tmp_path, key):
    out = tmp_path / "oracle"
    evaluate(AgentSpec("oracle"), ["stitching-paper"], out, progress=False)
    data = json.loads((out / "results.json").read_text())
    data["agent"].update(privileged=False, name="my_agent:Agent", label="my-agent")  # hides the privilege
    (out / "hidden.json").write_text(json.dumps(data))
    path = submit(out / "hidden.json", "hidden oracle", META, tmp_path / "board")
    block = verify(path, AgentSpec("oracle"), key, trials=10)
    assert not block["verified"] and "privilege differs" in block["test"]


def make_board(tmp_path, names, suites=("stitching-paper", "stitching"), verify_names=()):
    from cryptography.hazmat.primitives.asymmetric import ed25519

    board = tmp_path / "board"
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    commit_key(board, key)
    for name in names:
        out = tmp_path / name
        evaluate(AgentSpec(name), list(suites), out, progress=False)
        path = submit(out / "results.json", f"baseline: {name}", META, board)
        if name in verify_names:
            verify(path, AgentSpec(name), key)
    return board


def test_render_ranks_only_verified_entries_and_writes_a_self_contained_page(tmp_path):
    board = make_board(tmp_path, ["random", "explorer", "oracle", "qlearning"], verify_names=("random",))
    readme, page = render(board)
    text = readme.read_text()
    ranked, unverified = text.split("## Unverified entries (not ranked)")
    rows = [[line for line in part.splitlines() if line.startswith("| ") and "---" not in line][1:]
            for part in (ranked, unverified)]  # fmt: skip
    names = [[re.sub(r"\\(.)", r"\1", row.split(" | ")[1]) for row in part] for part in rows]  # escapes undone
    assert names == [["baseline: random"], ["baseline: explorer", "baseline: qlearning", "baseline: oracle"]]
    assert rows[0][0].startswith("| 1 |") and re.search(r"yes \(20\d\d\\-\d\d\\-\d\d, key [0-9a-f]{16}\)", rows[0][0])
    assert [r.split(" | ")[0] for r in rows[1]] == ["| -", "| -", "| ceiling"]  # never ranked among verified ones
    assert "| default |" in rows[0][0]
    text = page.read_text()
    # Nothing to fetch: the page opens offline.
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=|url\(|@import|fetch\(|XMLHttpRequest", text)


def test_names_cannot_break_the_table_or_the_page(tmp_path):
    from markdown_it import MarkdownIt

    out = tmp_path / "r"
    evaluate(AgentSpec("random"), ["stitching-paper"], out, progress=False)
    evil = '<!--<script> a | b "><img src=x onerror=alert(1)> [official #1](https://evil.example) ![t](https://e.x/t.png)'
    submit(out / "results.json", evil, {**META, "authors": "</script><script>alert(1)</script>"}, tmp_path / "board")
    readme, page = render(tmp_path / "board")
    shown = MarkdownIt("commonmark").enable("table").render(readme.read_text())  # what a reader of the board sees
    row = shown[shown.index("<tbody>"):shown.index("</tbody>")]
    assert row.count("<td") == 17  # the name did not add a column
    assert "<img" not in shown and "<script" not in shown and "evil.example\"" not in shown
    assert [href for href in re.findall(r'href="([^"]*)"', shown)] == ["https://example.org/code"]
    cell = re.sub(r"</?code>", "", re.findall(r"<td>(.*?)</td>", row)[1])  # an @ or : may sit in a code span
    assert html_unescape(cell) == evil  # shown exactly as written
    text = page.read_text()
    data = text[text.index('<script id="board-data"'):]
    data = data[: data.index("</script>")]
    assert "<!--" not in data and "<img" not in data and "</script" not in data[10:]


def html_unescape(text):
    import html

    return html.unescape(text)


def run_page(browser, page, profile):
    """Load `page` in headless Chromium running its self-test; (report, console log lines)."""
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--enable-logging=stderr",
         "--v=0", f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom",
         page.resolve().as_uri() + "#selftest"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = re.search(r'<pre id="selftest-result">(.*?)</pre>', result.stdout, re.S)
    assert found, result.stderr[-2000:]
    report = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    return report, console


def test_the_browser_check_sees_console_errors(tmp_path, chromium):
    browser = chromium
    page = tmp_path / "broken.html"
    page.write_text('<html><body><img src="missing.png"><script>undefinedFunction();</script>'
                    '<pre id="selftest-result">{"ok": true, "checks": {}, "errors": []}</pre></body></html>')  # fmt: skip
    _, console = run_page(browser, page, tmp_path / "profile")
    assert any("undefinedFunction" in line for line in console)


def test_page_in_a_real_headless_browser(tmp_path, chromium):
    browser = chromium
    board = make_board(tmp_path, ["random", "explorer", "qlearning"], suites=("nonstationary", "stitching"))
    _, page = render(board)
    report, console = run_page(browser, page, tmp_path / "profile")
    assert report["errors"] == [] and console == []  # no console errors, by the page's hooks or Chromium's log
    assert report["checks"] == {
        "rows": True, "sorted_descending": True, "sorted_ascending": True, "sorted_by_name": True,
        "curves": True, "filter": True,
    }  # fmt: skip
    assert report["ok"]


def test_cli_validate_lists_every_problem(results_file, tmp_path):
    empty = subprocess.run([sys.executable, "-m", "icrl_bench.cli", "leaderboard", "validate", "--board", str(tmp_path)],
                           capture_output=True, text=True)  # fmt: skip
    assert empty.returncode == 1 and "no submission files" in empty.stdout
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


def test_the_committed_leaderboard_is_valid_verified_and_rendered(tmp_path):
    from icrl_bench.leaderboard.render import board_entries, render_html, render_markdown

    root = Path(__file__).resolve().parents[1] / "leaderboard"
    paths = sorted((root / "submissions").glob("*.json"))
    assert {p.stem for p in paths} >= {"baseline-random", "baseline-qlearning", "baseline-explorer", "baseline-oracle"}
    assert validate_board(paths, root) == []  # every block's signature checks against a committed key
    rows = board_entries(paths, root)
    blocks = {p.stem: json.loads(p.read_text())["verification"] for p in paths}
    assert all(block is not None for block in blocks.values())  # every entry was re-run by the verifier
    assert {r["slug"]: r["verified"] for r in rows} == {slug: b["verified"] for slug, b in blocks.items()}
    assert all(blocks[f"baseline-{name}"]["verified"] for name in ("random", "qlearning", "explorer", "oracle"))
    assert (root / "README.md").read_text() == render_markdown(rows)  # re-render after every change
    assert (root / "index.html").read_text() == render_html(rows)


def test_every_attack_on_a_verified_entry_is_caught():
    """The fuzzer's board attacks (benchmarks/validation_fuzz.py), each kind twice, and every odd file."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        from validation_fuzz import fuzz_board
    finally:
        sys.path.pop(0)
    from icrl_bench.leaderboard.mutations import BOARD_MUTATIONS, ODD_FILES

    tried, caught, holes = fuzz_board(2 * len(BOARD_MUTATIONS), seed=3)
    assert holes == []
    assert tried == caught and len(tried) == len(BOARD_MUTATIONS) + len(ODD_FILES)


def test_an_entry_of_the_papers_50_trials_is_accepted_shown_and_verified_at_its_own_count(tmp_path, key):
    board = tmp_path / "board"
    commit_key(board, key)
    out = tmp_path / "r"
    evaluate(AgentSpec("explorer"), ["id", "stitching-paper"], out, trials=50, progress=False)
    path = submit(out / "results.json", "fifty trials", META, board)
    block = verify(path, AgentSpec("explorer"), key)
    assert block["trials"] == {"id": 50, "stitching-paper": 50} and block["verified"], block
    quick = verify(path, AgentSpec("explorer"), key, trials=20)
    assert quick["trials"] == {"id": 20, "stitching-paper": 20} and not quick["verified"]
    verify(path, AgentSpec("explorer"), key)
    readme, _ = render(board)
    assert "| 50 | yes (" in readme.read_text()
    few = tmp_path / "few"
    evaluate(AgentSpec("explorer"), ["id"], few, trials=20, progress=False)
    with pytest.raises(SubmissionError, match="has 20 trials; entries need at least 30"):
        submit(few / "results.json", "twenty trials", META, board)
