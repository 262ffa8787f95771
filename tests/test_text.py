import pytest

from icrl_bench.envs import (
    PAPER_STITCHING_TASK,
    TEXT_FORMATS,
    Transition,
    format_llama3,
    format_plain,
    format_words,
    parse_action,
)


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


def test_words_format():
    success, failure = paper_demos()
    assert format_words([failure]) == "obs 8 | act right | obs 9 | act right | obs 10 | act right | obs 11 | end\n"
    assert format_words([success]).rstrip("\n").endswith("obs 22 | reward 1.0 | end")


def test_plain_format_is_one_line_per_step_with_visible_ends_and_rewards():
    success, failure = paper_demos()
    assert format_plain([failure]) == "8 right\n9 right\n10 right\n11 end\n"
    assert format_plain([success, failure]) == (
        "2 down\n6 down\n10 down\n14 down\n18 down reward 1\n22 end\n8 right\n9 right\n10 right\n11 end\n"
    )


@pytest.mark.parametrize("name", sorted(TEXT_FORMATS))
def test_every_format_is_its_pieces_with_the_action_word_right_after_each_prefix(name):
    fmt = TEXT_FORMATS[name]
    success, failure = paper_demos()
    text = fmt.text([success, failure])
    pieces = [fmt.start(2)]
    for t in success:
        pieces += [fmt.action_words[t.action], fmt.after(t)]
    assert text.startswith("".join(pieces))
    assert fmt.after(success[-1]).endswith(("end\n", "<|end_of_text|>"))  # an episode's end is visible
    assert "1" in fmt.after(success[-1])  # and so is its reward


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
