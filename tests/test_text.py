import pytest

from icrl_bench.envs import PAPER_STITCHING_TASK, Transition, format_llama3, format_plain, parse_action


def paper_demos():
    return [PAPER_STITCHING_TASK.rollout(d) for d in PAPER_STITCHING_TASK.demonstrations]


def item(name, value):
    return f"<|start_header_id|>{name}<|end_header_id|>{value}<|eot_id|>"


def test_llama3_format_is_exactly_the_papers():
    success, failure = paper_demos()
    expected = (
        "<|begin_of_text|>" + item("observation", 2)
        + "".join(item("action", "down") + item("observation", o) for o in (6, 10, 14, 18, 22))
        + item("reward", "1.0") + "<|end_of_text|>"
        + "<|begin_of_text|>" + item("observation", 8)
        + "".join(item("action", "right") + item("observation", o) for o in (9, 10, 11))
        + "<|end_of_text|>"
    )  # fmt: skip
    assert format_llama3([success, failure]) == expected


def test_plain_format():
    success, failure = paper_demos()
    assert format_plain([failure]) == "obs 8 | act right | obs 9 | act right | obs 10 | act right | obs 11 | end\n"
    assert format_plain([success]).rstrip("\n").endswith("obs 22 | reward 1.0 | end")


def test_formatters_reject_broken_episodes():
    with pytest.raises(ValueError, match="no transitions"):
        format_llama3([[]])
    broken = [Transition(0, 2, 0.0, 1, False, False), Transition(5, 2, 0.0, 6, False, False)]
    with pytest.raises(ValueError, match="does not follow"):
        format_plain([broken])


@pytest.mark.parametrize("text, action", [("left", 0), ("down", 1), ("right", 2), ("up", 3), (" up\n", 3)])
def test_parse_action_accepts_the_four_words(text, action):
    assert parse_action(text) == action


@pytest.mark.parametrize("text", ["Left", "UP", "2", "", "go left", "left.", "north"])
def test_parse_action_rejects_everything_else(text):
    with pytest.raises(ValueError, match="expected exactly one of left, down, right, up"):
        parse_action(text)


def test_parse_action_rejects_non_text():
    with pytest.raises(ValueError, match="must be text"):
        parse_action(2)
