"""Abduction in the code environment: any valid preimage is correct, injection never is.

These tests run the real sandboxed executor (two worker processes).
"""

from __future__ import annotations

import numpy as np
import pytest

from absolutezero.protocol import Task


@pytest.fixture(scope="module")
def env(make_code_env):
    return make_code_env()


def make_task(env, program: str, input: str) -> Task:
    prompt = env.proposer_prompt("abduction", [], np.random.default_rng(0))
    response = f"<answer>\n```python\n{program}\n```\n```input\n{input}\n```\n</answer>"
    validation = env.validate([prompt], [response])[0]
    assert validation.valid, validation.reason
    assert validation.task.task_type == "abduction"
    return validation.task


def score(env, task: Task, inputs: list[str]) -> list:
    prompt = env.solver_prompt(task)
    responses = [f"<think>try</think><answer>\n```input\n{x}\n```\n</answer>" for x in inputs]
    return env.verify([task] * len(inputs), [prompt] * len(inputs), responses)


def test_non_injective_program_accepts_any_preimage(env):
    task = make_task(env, "def f(x):\n    return x % 3", "7")
    verdicts = score(env, task, ["1", "4", "7", "-2", "2"])
    assert [v.score for v in verdicts] == [1.0, 1.0, 1.0, 1.0, 0.0]
    assert "not the output" in verdicts[-1].reason


def test_multi_argument_and_structured_inputs(env):
    task = make_task(env, "def f(d, key):\n    return sorted(d.get(key, []))", "{'a': [3, 1]}, 'a'")
    verdicts = score(env, task, ["{'a': [1, 3]}, 'a'", "{'b': [3, 1]}, 'b'", "{'a': [3, 1]}, 'b'"])
    assert [v.score for v in verdicts] == [1.0, 1.0, 0.0]


def test_type_aware_output_comparison(env):
    task = make_task(env, "def f(a):\n    return a", "1")
    assert [v.score for v in score(env, task, ["1", "1.0", "True"])] == [1.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "injected",
    [
        "0) or True or (0",
        "0), True or (0",
        "f(0) or True",
        "__import__('os')",
        "type('A', (), {'__eq__': lambda s, o: True})()",
    ],
)
def test_injected_inputs_never_score(env, injected):
    """Trap: the original pasted abduction answers into code, so these scored 1."""
    task = make_task(env, "def f(x):\n    return x * 2", "21")
    verdict = score(env, task, [injected])[0]
    assert verdict.score == 0.0 and verdict.reason


def test_answer_that_crashes_or_hangs_the_program(env):
    task = make_task(env, "def f(n):\n    total = 0\n    while n != 0:\n        n -= 2\n        total += 1\n    return total", "4")
    verdicts = score(env, task, ["'text'", "3", "4"])
    assert [v.score for v in verdicts] == [0.0, 0.0, 1.0]
    assert verdicts[0].format_ok and "failed" in verdicts[0].reason
    assert verdicts[1].format_ok and "timeout" in verdicts[1].reason


def test_call_form_answer_is_accepted(env):
    task = make_task(env, "def f(a, b):\n    return a + b", "2, 3")
    prompt = env.solver_prompt(task)
    verdict = env.verify([task], [prompt], ["<answer>f(1, 4)</answer>"])[0]
    assert verdict.correct


def test_unparseable_answers_are_format_failures(env):
    task = make_task(env, "def f(a):\n    return a", "'x'")
    prompt = env.solver_prompt(task)
    responses = ["'x'", "<answer>```input\n\n```</answer>", "<answer>```input\nx = 'x'\n```</answer>"]
    verdicts = env.verify([task] * 3, [prompt] * 3, responses)
    assert all(v.score == 0.0 and not v.format_ok for v in verdicts)
    assert verdicts[0].reason == "no <answer> block"
