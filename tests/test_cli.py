import subprocess
import sys
from pathlib import Path

import pytest

from icrl_bench.cli import calibrate, main
from icrl_bench.envs import ENV_SPECS


def test_envs_lists_every_id_with_calibration(capsys):
    assert main(["envs", "--calibrate", "5"]) == 0
    out = capsys.readouterr().out
    for env_id in ENV_SPECS:
        assert env_id in out


def test_calibrate_numbers_are_probabilities_and_optimal_beats_random():
    c = calibrate("ICRLFrozenLake-v0", 30)
    assert 0.05 < c["random"] < 0.35 and c["optimal"] == 1.0 and 4 <= c["shortest_path"] <= 8
    slippery = calibrate("ICRLFrozenLakeSlippery-v0", 30)
    assert slippery["random"] < slippery["optimal"] < 1.0


def test_console_script_entry_point_runs():
    script = Path(sys.executable).parent / "icrl-bench"  # installed by `pip install -e .`
    assert script.exists(), "install the package (pip install -e .) to get the icrl-bench command"
    result = subprocess.run([str(script), "envs", "--calibrate", "0"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "ICRLFrozenLakeStitchingPaper-v0" in result.stdout


def test_the_main_command_needs_no_torch():
    # The README's first command installs no torch: the parser (train options included) and evaluating a
    # classical agent must work without it, and a trained model must say what to install.
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "from icrl_bench.cli import main\n"
        "assert main(['evaluate', 'random', '--suites', 'id', '--trials', '2', '--out', sys.argv[1], '--no-progress']) == 0\n"
        "assert main(['train', 'dqn', '--data', 'x', '--out', sys.argv[1] + '-t']) == 2\n"
        "assert main(['evaluate', 'icrl-dqn-small', '--suites', 'id', '--trials', '1', '--out', sys.argv[1] + '-m', '--in-process']) == 2\n"  # torch hidden in this process only
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run([sys.executable, "-c", code, tmp + "/r"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "pip install -e '.[llm]'" in run.stderr


def test_every_option_of_every_command_has_a_help_line():
    import argparse

    from icrl_bench.cli import build_parser

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, path + [name])
            elif action.dest != "help":
                yield " ".join(path), action

    options = list(walk(build_parser(), ["icrl-bench"]))
    assert len([1 for path, _ in options if path == "icrl-bench train llm"]) > 40
    assert [(path, a.option_strings or a.dest) for path, a in options if not a.help] == []


def test_evaluate_reports_user_errors_in_one_line_but_lets_a_bug_keep_its_traceback(monkeypatch, capsys):
    from icrl_bench import cli
    from icrl_bench.protocol import evaluation

    assert cli.main(["evaluate", "random", "--suites", "id,nope", "--no-progress"]) == 2
    assert "error: unknown suite 'nope'; known suites: id," in capsys.readouterr().err
    assert cli.main(["evaluate", "random", "--suites", "id", "--trials", "101", "--no-progress"]) == 2
    assert "--trials must be between 1 and 100" in capsys.readouterr().err

    def broken(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(evaluation, "evaluate", broken)
    with pytest.raises(ValueError, match="an internal bug"):  # not "error: an internal bug", exit 2
        cli.main(["evaluate", "random", "--suites", "id", "--no-progress", "--out", "/nonexistent/never-written"])


def test_baselines_write_their_curves_only_where_asked(tmp_path, capsys):
    import json

    from icrl_bench.protocol.results import BASELINE_CURVES

    shipped = BASELINE_CURVES.read_bytes()
    target = tmp_path / "curves.json"
    assert main(["baselines", "--trials", "1", "--out", str(tmp_path / "res"), "--write-curves", str(target)]) == 0
    curves = json.loads(target.read_text())
    assert set(curves) == {"random", "qlearning", "explorer", "oracle"} and len(curves["random"]["id"]["curve"]) == 30
    assert BASELINE_CURVES.read_bytes() == shipped  # the installed package is never written
    assert f"wrote {target}" in capsys.readouterr().out


def test_ray_options_need_the_ray_backend_and_sane_values(tmp_path, capsys):
    assert main(["evaluate", "explorer", "--address", "127.0.0.1:6379", "--out", str(tmp_path / "a")]) == 2
    assert "--address apply to --backend ray only" in capsys.readouterr().err
    assert main(["evaluate", "explorer", "--backend", "ray", "--gpus-per-worker", "-1", "--out", str(tmp_path / "b")]) == 2
    assert "--gpus-per-worker at least 0" in capsys.readouterr().err
    assert main(["evaluate", "explorer", "--backend", "ray", "--in-process", "--out", str(tmp_path / "c")]) == 2
    assert "cannot be combined with --backend ray" in capsys.readouterr().err


def test_train_export_of_a_file_that_is_no_checkpoint_is_a_clear_error(tmp_path, capsys):
    pytest.importorskip("torch")
    import torch

    from icrl_bench.cli import main

    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    other = tmp_path / "other.pt"
    torch.save({"weights": 1}, other)
    for path, says in ((text, "is not a training checkpoint"), (other, "lacks the network's config and weights"),
                       (tmp_path / "missing.pt", "No such file")):  # fmt: skip
        assert main(["train", "export", "--checkpoint", str(path), "--out", str(tmp_path / "m.pt")]) == 2
        assert says in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()
