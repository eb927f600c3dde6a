"""Proposer and solver prompts of the code environment (no executor is started)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from absolutezero.protocol import Task
from absolutezero_code.env import CodeEnvironment
from absolutezero_code.parsing import (
    FormatError,
    parse_induction_proposal,
    parse_input_answer,
    parse_output_answer,
    parse_program_answer,
    parse_proposal,
)
from absolutezero_code.tasks import induction_payload


def triplet(task_type: str, program: str, input: str, output: str) -> Task:
    return Task(task_type, {"program": program, "input": input, "output": output})


REFS = [
    triplet("deduction", f"def f(x):\n    return x + {k}", str(k * 10), str(k * 11)) for k in range(1, 6)
]


@pytest.fixture()
def env():
    environment = CodeEnvironment()
    yield environment
    environment.close()


def user_text(prompt) -> str:
    assert [m["role"] for m in prompt.messages] == ["system", "user"]
    assert "<think>" in prompt.messages[0]["content"] and "<answer>" in prompt.messages[0]["content"]
    return prompt.messages[1]["content"]


def format_example(text: str) -> str:
    """The answer skeleton of a prompt: from its ``<answer>`` to its ``</answer>``
    (placeholders in angle brackets)."""
    return text[text.index("<answer>"): text.index("</answer>") + len("</answer>")]


PLACEHOLDER = re.compile(r"<(?!/?think>|/?answer>)[^<>\n]*>")


def filled(skeleton: str, *values: str) -> str:
    """The skeleton with its placeholders replaced by ``values`` in order (the rest by
    the last value), i.e. what a model following the format writes."""
    parts = iter(values)
    last = [values[-1]]

    def replace(match: re.Match) -> str:
        last[0] = next(parts, last[0])
        return last[0]

    return PLACEHOLDER.sub(replace, skeleton)


def test_copied_skeletons_are_format_errors(env):
    """Copying the format skeleton verbatim must not pass as an answer (it is what the
    135M model does with a worked example)."""
    task = triplet("deduction", "def f(s):\n    return s.upper()", "'quiet'", "'QUIET'")
    for parse, text in [
        (lambda t: parse_proposal(t, 2000, 500), user_text(env.proposer_prompt("deduction", [], np.random.default_rng(0)))),
        (lambda t: parse_output_answer(t, 100), user_text(env.solver_prompt(task))),
        (lambda t: parse_input_answer(t, 100), user_text(env.solver_prompt(Task("abduction", task.payload)))),
    ]:
        with pytest.raises(FormatError):
            parse(format_example(text))


@pytest.mark.parametrize("task_type", ["deduction", "abduction"])
def test_triplet_proposer_prompt_shows_limited_references_and_parses_its_own_example(env, task_type):
    prompt = env.proposer_prompt(task_type, REFS, np.random.default_rng(0))
    text = user_text(prompt)
    assert prompt.prefill == "<answer>\n```python\ndef f("  # default style "template": program first
    for ref in REFS[:3]:
        assert ref.payload["program"] in text
    assert REFS[3].payload["program"] not in text  # display limit is 3 by default
    assert "deterministic" in text and "import" in text
    json.dumps(dict(prompt.context))
    assert prompt.context["references"] == [[r.payload["program"], r.payload["input"]] for r in REFS[:3]]
    skeleton = format_example(text)
    program, input = parse_proposal(filled(skeleton, "x", "return x", "[1, 2]"), 2000, 500)
    assert program == "def f(x):\n    return x" and input == "[1, 2]"


def test_goal_differs_between_deduction_and_abduction(env):
    rng = np.random.default_rng(0)
    deduction = user_text(env.proposer_prompt("deduction", REFS, rng))
    abduction = user_text(env.proposer_prompt("abduction", REFS, rng))
    assert deduction != abduction


def test_prefill_and_display_limit_are_configurable():
    with CodeEnvironment(prefill="<think>\nLet me", max_shown_references=1) as env:
        prompt = env.proposer_prompt("deduction", REFS, np.random.default_rng(0))
        assert prompt.prefill == "<think>\nLet me"
        assert prompt.context["references"] == [[REFS[0].payload["program"], REFS[0].payload["input"]]]
        assert env.solver_prompt(REFS[0]).prefill == "<think>\nLet me"


def test_induction_proposer_picks_reference_program_with_rng(env):
    picks = {
        env.proposer_prompt("induction", REFS, np.random.default_rng(seed)).context["program"]
        for seed in range(20)
    }
    assert len(picks) > 1 and picks <= {r.payload["program"] for r in REFS}
    a = env.proposer_prompt("induction", REFS, np.random.default_rng(7))
    b = env.proposer_prompt("induction", REFS, np.random.default_rng(7))
    assert a == b
    text = user_text(a)
    assert a.context["program"] in text and "10 different inputs" in text
    skeleton = format_example(text)
    inputs, message = parse_induction_proposal(filled(skeleton, "1", "2", "3", "doubles"), 10, 500, 500)
    assert inputs == ["1", "2", "3"] and message == "doubles"


def test_induction_proposer_without_references_uses_identity(env):
    prompt = env.proposer_prompt("induction", [], np.random.default_rng(0))
    assert prompt.context["program"] == "def f(a):\n    return a"


def test_deduction_solver_prompt_hides_output(env):
    task = triplet("deduction", "def f(s):\n    return s.upper()", "'quiet'", "'QUIET'")
    text = user_text(env.solver_prompt(task))
    assert task.payload["program"] in text and "'quiet'" in text and "QUIET" not in text
    assert parse_output_answer(filled(format_example(text), "'QUIET'"), 100) == "'QUIET'"


def test_abduction_solver_prompt_hides_input(env):
    task = triplet("abduction", "def f(s):\n    return s.upper()", "'quiet'", "'QUIET'")
    text = user_text(env.solver_prompt(task))
    assert task.payload["program"] in text and "'QUIET'" in text and "'quiet'" not in text
    assert parse_input_answer(filled(format_example(text), "'quiet'"), 100) == "'quiet'"


def test_induction_solver_prompt_shows_visible_pairs_and_message_only(env):
    inputs = [f"'in{k}'" for k in range(6)]
    outputs = [f"'OUT{k}'" for k in range(6)]
    payload = induction_payload("def f(s):\n    return s.upper()", inputs, outputs, "shouts", 3)
    text = user_text(env.solver_prompt(Task("induction", payload)))
    assert all(i in text and o in text for i, o in zip(inputs[:3], outputs[:3]))
    assert not any(i in text or o in text for i, o in zip(inputs[3:], outputs[3:]))
    assert "shouts" in text and "upper" not in text
    program = parse_program_answer(filled(format_example(text), "s", "return s.upper()"), 2000)
    assert program == "def f(s):\n    return s.upper()"


def test_unknown_task_type_and_bad_rng(env):
    with pytest.raises(ValueError, match="unknown task type 'deductoin'"):
        env.proposer_prompt("deductoin", [], np.random.default_rng(0))
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        env.proposer_prompt("deduction", [], 0)


def test_prompts_are_short(env):
    """Small models need short prompts: the template without references stays compact."""
    for task_type in env.task_types:
        text = user_text(env.proposer_prompt(task_type, [], np.random.default_rng(0)))
        assert len(re.findall(r"\S+", text)) < 250


# (role, task_type) -> a completion a model might write after the "answer" prefill.
ANSWER_COMPLETIONS = {
    ("propose", "deduction"): "21\n```\n```python\ndef f(x):\n    return x * 2\n```\n</answer>",
    ("propose", "abduction"): "f(21)\n```\n```python\ndef f(x):\n    return x * 2\n```\n</answer>",
    ("solve", "deduction"): "'QUIET'\n```\n</answer>",
    ("solve", "abduction"): "'quiet'\n```",  # stopped before </answer>
    ("solve", "induction"): "def f(s):\n    return s.upper()\n```\n</answer>",
}


def test_answer_prefill_opens_the_roles_fence_and_parses_with_the_completion():
    """The environment parses prefill + completion, so the prefill's open fence counts."""
    task = triplet("deduction", "def f(s):\n    return s.upper()", "'quiet'", "'QUIET'")
    payload = induction_payload("def f(s):\n    return s.upper()", ["'a'", "'b'"], ["'A'", "'B'"], "m", 1)
    with CodeEnvironment(prefill="answer") as env:
        rng = np.random.default_rng(0)
        prompts = {
            ("propose", "deduction"): env.proposer_prompt("deduction", REFS, rng),
            ("propose", "abduction"): env.proposer_prompt("abduction", REFS, rng),
            ("propose", "induction"): env.proposer_prompt("induction", REFS, rng),
            ("solve", "deduction"): env.solver_prompt(task),
            ("solve", "abduction"): env.solver_prompt(Task("abduction", task.payload)),
            ("solve", "induction"): env.solver_prompt(Task("induction", payload)),
        }
    assert prompts["solve", "deduction"].prefill == "<answer>\n```output\n"
    assert prompts["solve", "abduction"].prefill == "<answer>\n```input\n"
    for key in [("propose", "deduction"), ("propose", "abduction"), ("propose", "induction")]:
        assert prompts[key].prefill == "<answer>\n```input\n"
    assert prompts["solve", "induction"].prefill == "<answer>\n```python\n"
    full = {key: prompts[key].prefill + text for key, text in ANSWER_COMPLETIONS.items()}
    assert parse_proposal(full["propose", "deduction"], 2000, 500)[1] == "21"
    assert parse_proposal(full["propose", "abduction"], 2000, 500)[1] == "21"
    assert parse_output_answer(full["solve", "deduction"], 100) == "'QUIET'"
    assert parse_input_answer(full["solve", "abduction"], 100) == "'quiet'"
    assert parse_program_answer(full["solve", "induction"], 2000).endswith("s.upper()")
    induction = prompts["propose", "induction"].prefill + "1\n```\n```input\n2\n```\n```message\nm\n```"
    assert parse_induction_proposal(induction, 10, 500, 500) == (["1", "2"], "m")


@pytest.mark.parametrize(
    "option, expected", [("think", "<think>"), ("none", ""), ("<think>\nLet me", "<think>\nLet me")]
)
def test_prefill_styles_and_verbatim_text(option, expected):
    with CodeEnvironment(prefill=option) as env:
        assert env.proposer_prompt("induction", REFS, np.random.default_rng(0)).prefill == expected
        assert env.solver_prompt(REFS[0]).prefill == expected
