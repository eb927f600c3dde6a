"""Induction in the code environment: inputs + message for a given program, hidden pairs.

These tests run the real sandboxed executor (two worker processes).
"""

from __future__ import annotations

from ast import literal_eval

import numpy as np
import pytest

from absolutezero.protocol import Task
from absolutezero_code.env import CodeEnvironment

PROGRAM = "def f(s):\n    return s[::-1].upper()"
REFERENCE = Task("deduction", {"program": PROGRAM, "input": "'ab'", "output": "'BA'"})
WORDS = ["'abc'", "'hello'", "'Xy'", "'level'", "'a b'", "'12ab'", "'zz'", "'Moon'", "'q'", "'python'"]


@pytest.fixture(scope="module")
def env(make_code_env):
    return make_code_env()


def response(inputs: list[str], message: str = "reverses and shouts") -> str:
    blocks = "\n".join(f"```input\n{x}\n```" for x in inputs)
    return f"<think>pick words</think>\n<answer>\n{blocks}\n```message\n{message}\n```\n</answer>"


def propose(env, inputs: list[str], message: str = "reverses and shouts", program_refs=(REFERENCE,)):
    prompt = env.proposer_prompt("induction", list(program_refs), np.random.default_rng(0))
    return env.validate([prompt], [response(inputs, message)])[0]


def solve(env, task: Task, programs: list[str]) -> list:
    prompt = env.solver_prompt(task)
    responses = [f"<think>see</think>\n<answer>\n```python\n{p}\n```\n</answer>" for p in programs]
    return env.verify([task] * len(programs), [prompt] * len(programs), responses)


def test_valid_proposal_gets_executor_outputs_and_half_split(env):
    validation = propose(env, WORDS)
    assert validation.valid, validation.reason
    payload = validation.task.payload
    assert validation.task.task_type == "induction"
    assert payload["program"] == PROGRAM and payload["message"] == "reverses and shouts"
    assert payload["inputs"] == WORDS
    assert payload["outputs"][0] == "'CBA'" and payload["outputs"][2] == "'YX'"
    assert payload["visible"] == [0, 1, 2, 3, 4] and payload["hidden"] == [5, 6, 7, 8, 9]


def test_duplicates_and_malformed_inputs_are_dropped(env):
    inputs = ["'abc'", '"abc"', "not valid", *WORDS[1:7]]
    validation = propose(env, inputs)
    assert validation.valid, validation.reason
    assert validation.task.payload["inputs"] == ["'abc'", *WORDS[1:7]]
    assert len(validation.task.payload["hidden"]) == 3


def test_too_few_distinct_inputs_is_a_format_failure(env):
    validation = propose(env, ["'a'", "'a'", "'b'", "'c'", "x"])
    assert not validation.valid and not validation.format_ok
    assert "only 3 distinct well-formed inputs, need at least 6" in validation.reason


def test_inputs_that_fail_to_run_are_dropped_and_counted(env):
    validation = propose(env, ["1", "2", "3", "'ok'", "'fine'", "'good'", "[1]"])
    assert not validation.valid and validation.format_ok
    assert "only 3 inputs ran successfully" in validation.reason and "TypeError" in validation.reason


def test_missing_message_is_a_format_failure(env):
    prompt = env.proposer_prompt("induction", [REFERENCE], np.random.default_rng(0))
    text = "<answer>\n" + "\n".join(f"```input\n{x}\n```" for x in WORDS) + "\n</answer>"
    validation = env.validate([prompt], [text])[0]
    assert not validation.valid and not validation.format_ok and "message" in validation.reason


@pytest.fixture(scope="module")
def task(env) -> Task:
    validation = propose(env, WORDS)
    assert validation.valid, validation.reason
    return validation.task


def test_correct_program_written_differently_is_accepted(env, task):
    other = "def f(text):\n    out = ''\n    for ch in text:\n        out = ch.upper() + out\n    return out"
    assert solve(env, task, [other])[0].correct


def test_program_that_only_memorises_visible_pairs_fails(env, task):
    payload = task.payload
    table = {literal_eval(payload["inputs"][i]): literal_eval(payload["outputs"][i]) for i in payload["visible"]}
    lookup = f"def f(s):\n    return {table!r}.get(s, '')"
    verdict = solve(env, task, [lookup])[0]
    assert verdict.score == 0.0 and verdict.format_ok and "expected" in verdict.reason


def test_one_wrong_hidden_pair_fails(env, task):
    last_hidden = literal_eval(task.payload["inputs"][task.payload["hidden"][-1]])
    almost = f"def f(s):\n    if s == {last_hidden!r}:\n        return 'nope'\n    return s[::-1].upper()"
    assert solve(env, task, [almost])[0].score == 0.0


def test_always_equal_object_cannot_earn_reward(env, task):
    cheat = (
        "class Any:\n    def __eq__(self, other):\n        return True\n    def __repr__(self):\n"
        "        return 'Any()'\n\ndef f(s):\n    return Any()"
    )
    verdict = solve(env, task, [cheat])[0]
    assert verdict.score == 0.0 and verdict.format_ok


def test_unparseable_programs_are_format_failures(env, task):
    verdicts = solve(env, task, ["def g(s):\n    return s", "def f(s)\n    return s"])
    assert [v.format_ok for v in verdicts] == [False, False]
    assert verdicts[0].reason == "program does not define f"
    assert verdicts[1].reason.startswith("syntax error in program at line 1")


def test_configurable_input_counts():
    with CodeEnvironment(workers=1, num_induction_inputs=4, min_induction_inputs=2) as small:
        validation = propose(small, WORDS)
        assert validation.valid, validation.reason
        assert small.seed_tasks("induction")[0].payload["inputs"][:1] == ["'Hello World'"]
        assert validation.task.payload["inputs"] == WORDS[:4]
        assert validation.task.payload["hidden"] == [2, 3]
    with pytest.raises(ValueError, match="min_induction_inputs"):
        CodeEnvironment(num_induction_inputs=4, min_induction_inputs=5)
