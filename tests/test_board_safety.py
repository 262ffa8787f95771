"""The board treats every file and string as hostile: links, odd files, sizes, Markdown and HTML injection."""

import http.server
import os
import threading
import time
from pathlib import Path

import pytest

from icrl_bench.agents import AgentSpec
from icrl_bench.leaderboard.files import MAX_FILE_BYTES
from icrl_bench.leaderboard.render import render
from icrl_bench.leaderboard.submission import SubmissionError, submit, validate_board, validate_meta
from icrl_bench.protocol import evaluate

META = {"authors": "Tests"}


@pytest.fixture(scope="module")
def results_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("r")
    evaluate(AgentSpec("random"), ["stitching-paper"], out, progress=False)
    return out / "results.json"


@pytest.fixture
def board(results_file, tmp_path):
    board = tmp_path / "board"
    submit(results_file, "random", META, board)
    return board


@pytest.mark.parametrize("target", ["README.md", "index.html"])
def test_render_never_writes_through_a_link(board, tmp_path, target):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    (board / target).symlink_to(outside)
    with pytest.raises(SubmissionError, match="symbolic link"):
        render(board)
    assert outside.read_text() == "precious"


def test_submit_never_writes_through_a_linked_folder(results_file, tmp_path):
    board, elsewhere = tmp_path / "board", tmp_path / "elsewhere"
    board.mkdir()
    elsewhere.mkdir()
    (board / "submissions").symlink_to(elsewhere)
    with pytest.raises(SubmissionError, match="symbolic link"):
        submit(results_file, "random", META, board)
    assert list(elsewhere.iterdir()) == []


def test_odd_files_are_refused_before_they_are_read(board, tmp_path):
    folder = board / "submissions"
    (folder / "dir.json").mkdir()
    os.mkfifo(folder / "fifo.json")  # reading it would block for ever
    (folder / "zero.json").symlink_to("/dev/zero")  # reading it would never end
    (folder / "digits.json").write_text('{"submission_schema": ' + "9" * 5000 + "}")
    with open(folder / "huge.json", "wb") as f:  # sparse: over the limit without using the disk
        f.truncate(MAX_FILE_BYTES + 1)
    start = time.perf_counter()
    problems = validate_board(sorted(folder.glob("*.json")), board)
    assert time.perf_counter() - start < 30
    text = "\n".join(problems)
    assert "dir.json is a directory" in text and "fifo.json is a FIFO" in text
    assert "zero.json is a symbolic link" in text and f"over the limit of {MAX_FILE_BYTES:,}" in text
    assert "an integer of 5000 digits" in text
    assert not any("random.json" in p for p in problems)  # the good entry is untouched


@pytest.mark.parametrize("url", [
    "javascript&colon;alert(1)", "/\\evil.example/x", "https://ok/)[pwn](javascript:alert(1))", "javascript:alert(1)",
    "http://plain.example", "//evil.example", "https://ok/<script>", "https://ok/a b", "data:text/html,x",
])  # fmt: skip
def test_unsafe_links_are_refused(url):
    problems = validate_meta({"name": "a", "authors": "b", "code_url": url}, "f")
    assert any("must be an https:// URL or a relative path" in p for p in problems), url


def test_names_must_be_one_plain_line_of_bounded_length():
    assert validate_meta({"name": "x" * 200, "authors": "b"}, "f") == []
    assert any("at most 200 are allowed" in p for p in validate_meta({"name": "x" * 100_000, "authors": "b"}, "f"))
    for bad in ("evil\u202egnp.exe", "zero\u200bwidth", "bell\x07", "two\nlines", "para\u2029graph"):
        assert any("control/bidi" in p for p in validate_meta({"name": bad, "authors": "b"}, "f")), repr(bad)
    assert any("between 0 and 10^15" in p for p in validate_meta({"name": "a", "authors": "b", "model_size": 10**18}, "f"))


def test_hostile_names_run_no_script_and_fetch_nothing_in_a_browser(results_file, tmp_path, chromium):
    import subprocess

    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            requests.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        name = (f'<img src=http://127.0.0.1:{port}/img onerror="document.title=\'pwned\'">'
                f'<script>fetch("http://127.0.0.1:{port}/script")</script> [x](http://127.0.0.1:{port}/link)')  # fmt: skip
        board = tmp_path / "board"
        submit(results_file, name, {"authors": f"<iframe src=http://127.0.0.1:{port}/frame></iframe>"}, board)
        _, page = render(board)
        dom = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000", "--dump-dom",
             page.resolve().as_uri() + "#selftest"],
            capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
    finally:
        server.shutdown()
    assert '"ok":true' in dom.replace("&quot;", '"')  # the page worked, with the name in it as text
    assert "<title>icrl-bench leaderboard</title>" in dom  # the onerror handler never ran
    assert "<iframe" not in dom and "<img" not in dom and "&lt;img src=http://127.0.0.1" in dom  # text, not elements
    assert requests == []  # nothing left the page


def test_a_public_key_file_must_be_named_by_its_key_id(board):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    (board / "keys").mkdir()
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    (board / "keys" / "README.pem").write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    from icrl_bench.leaderboard.signing import SigningError

    with pytest.raises(SigningError, match="must be named by its key id"):
        validate_board(sorted((board / "submissions").glob("*.json")), board)


def test_many_keys_and_a_typo_board_are_handled(board, tmp_path):
    many = board / "submissions" / "many.json"
    many.write_text("{" + ",".join(f'"k{i}": {i}' for i in range(300_000)) + "}")  # 5 MB of keys
    start = time.perf_counter()
    problems = validate_board([many], board)
    assert time.perf_counter() - start < 30 and any("unknown top-level field" in p for p in problems)
    with pytest.raises(SubmissionError, match="has no submissions/ folder"):
        render(tmp_path / "typo")
    assert not (tmp_path / "typo").exists()


@pytest.fixture(scope="module")
def random_entry_results(tmp_path_factory):
    from icrl_bench.agents import AgentSpec
    from icrl_bench.protocol import evaluate as _evaluate
    from icrl_bench.protocol.suites import SUITES

    out = tmp_path_factory.mktemp("random")
    _evaluate(AgentSpec("random"), list(SUITES), out, progress=False)
    return out


@pytest.mark.parametrize("where", ["name", "authors", "label", "signed"])
def test_text_that_is_not_unicode_is_refused_with_its_field_never_a_crash(tmp_path, where, random_entry_results):
    import json as _json

    from icrl_bench.leaderboard.submission import SubmissionError, submit, validate_board, validate_submission

    out = random_entry_results
    meta = {"authors": "A"}
    if where in ("name", "authors"):
        bad = {"name": "x\ud800y"} if where == "name" else {"authors": "a\udfffb"}
        with pytest.raises(SubmissionError, match=f"field meta.{where} holds text that is not valid Unicode"):
            submit(out / "results.json", bad.get("name", "entry"), {**meta, **bad}, tmp_path / "board")
        return
    path = submit(out / "results.json", "entry", meta, tmp_path / "board")
    data = _json.loads(path.read_text())
    if where == "label":
        data["results"]["agent"]["label"] = "ran\ud800dom"
    else:
        data["verification"] = {"verified": True, "test": "t\ud800", "agent": {}}
    path.write_text(_json.dumps(data))  # json escapes the lone surrogate as \ud800: valid JSON, invalid text
    field = "results.agent.label" if where == "label" else "verification.test"
    assert any(f"field {field} holds text that is not valid Unicode" in p for p in validate_submission(data, "f"))
    assert any("not valid Unicode" in p for p in validate_board([path], tmp_path / "board"))
    from icrl_bench.cli import main

    assert main(["leaderboard", "validate", str(path), "--board", str(tmp_path / "board")]) != 0


def _without(results, suite):
    out = {**results, "suites": dict(results["suites"]), "records": dict(results["records"]),
           "summary": dict(results["summary"])}  # fmt: skip
    for part in ("suites", "records", "summary"):
        out[part].pop(suite)
    return out


@pytest.mark.parametrize("attack", ["oracle-minus-one", "explorer-minus-one", "explorer-with-oracle-id"])
def test_copies_of_other_entries_suites_are_refused_per_suite(tmp_path, attack):
    import json as _json
    import shutil

    from icrl_bench.leaderboard.submission import SubmissionError, submit, validate_board

    board = tmp_path / "board"
    shutil.copytree(Path(__file__).parents[1] / "leaderboard", board)
    oracle = _json.loads((board / "submissions" / "baseline-oracle.json").read_text())["results"]
    explorer = _json.loads((board / "submissions" / "baseline-explorer.json").read_text())["results"]
    if attack == "oracle-minus-one":
        results = _without(oracle, "ood-xl")
        results["agent"] = {**results["agent"], "name": "my_agent:Agent", "label": "my agent", "privileged": False}
    elif attack == "explorer-minus-one":
        results = _without(explorer, "ood-slippery")
    else:
        results = {**explorer, "records": {**explorer["records"], "id": oracle["records"]["id"]},
                   "summary": {**explorer["summary"], "id": oracle["summary"]["id"]}}  # fmt: skip
    path = tmp_path / "results.json"
    path.write_text(_json.dumps(results))
    with pytest.raises(SubmissionError, match=r"repeat the records of .*baseline-(oracle|explorer)\.json"):
        submit(path, "a new entry", {"authors": "someone"}, board)
    # Written past `submit`, the board's own check finds it too.
    forged = board / "submissions" / "forged.json"
    forged.write_text(_json.dumps({"submission_schema": 1, "meta": {"name": "forged", "authors": "x"},
                                   "results": results, "verification": None}))  # fmt: skip
    source = board / "submissions" / ("baseline-explorer.json" if attack.startswith("explorer") else "baseline-oracle.json")
    problems = validate_board([source, forged], board)
    assert any("forged.json: suite(s)" in p and "repeat the records" in p for p in problems), problems


@pytest.mark.parametrize("name, why", [
    ("\u3164", "shows nothing"), ("\u2800 \u115f", "shows nothing"),
    ("\u0435xplorer", "mixes scripts"),  # a Cyrillic "е"
    ("ｅｘｐｌｏｒｅｒ", "NFKC"),  # fullwidth letters
])  # fmt: skip
def test_invisible_look_alike_and_unnormalised_names_are_refused(name, why):
    from icrl_bench.leaderboard.submission import name_problems

    assert any(why in p for p in name_problems(name)), name_problems(name)
    assert name_problems("My agent (v2, 8B)") == [] and name_problems("Агент") == []  # one script a word is fine


def test_a_name_that_reads_as_an_existing_one_is_refused(tmp_path, random_entry_results):
    import shutil

    from icrl_bench.leaderboard.submission import name_skeleton

    board = tmp_path / "board"
    shutil.copytree(Path(__file__).parents[1] / "leaderboard", board)
    assert name_skeleton("baseline: \u0435xplorer") == name_skeleton("Baseline:  explorer") == "baseline: explorer"
    with pytest.raises(SubmissionError, match="reads as 'baseline: explorer'"):
        submit(random_entry_results / "results.json", "BASELINE: Explorer", {"authors": "x"}, board)


def test_names_with_at_signs_and_colons_never_autolink_under_githubs_markdown(tmp_path, random_entry_results):
    cmarkgfm = pytest.importorskip("cmarkgfm")
    import re as _re

    from icrl_bench.leaderboard.render import render_markdown

    rows = [{"name": name, "rank": 1, "privileged": False, "verified": False, "verified_date": None, "auc": {}, "trials": "100",
             "mean": 0.0, "link": None, "link_label": "", "forced_exploration": "none", "model_size": None}
            for name in ("support@evil.example", "xmpp:foo@bar.example", "https://evil.example/x", "www.evil.example")]  # fmt: skip
    html = cmarkgfm.github_flavored_markdown_to_html(render_markdown(rows))
    table = html.split("<tbody>")[1].split("</tbody>")[0]
    assert "<a " not in table, table
    text = _re.sub(r"<[^>]+>", "", table)
    assert "support@evil.example" in text and "xmpp:foo@bar.example" in text  # shown as typed
