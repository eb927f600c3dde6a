"""Deduction in the code environment: proposal validation and output verification.

These tests run the real sandboxed executor (two worker processes).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from absolutezero.protocol import Task
from absolutezero_code.env import CodeEnvironment


@pytest.fixture(scope="module")
def env(make_code_env):
    return make_code_env()


def proposal(program: str, input: str) -> str:
    return f"<think>ok</think>\n<answer>\n```python\n{program}\n```\n```input\n{input}\n```\n</answer>"


def answer(literal: str) -> str:
    return f"<think>compute</think>\n<answer>\n```output\n{literal}\n```\n</answer>"


def propose(env, program: str, input: str):
    prompt = env.proposer_prompt("deduction", [], np.random.default_rng(0))
    return env.validate([prompt], [proposal(program, input)])[0]


def task_for(env, program: str, input: str) -> Task:
    validation = propose(env, program, input)
    assert validation.valid, validation.reason
    return validation.task


def score(env, task: Task, literals: list[str]) -> list:
    prompt = env.solver_prompt(task)
    return env.verify([task] * len(literals), [prompt] * len(literals), [answer(x) for x in literals])


BENIGN = [
    # string work
    ("def f(s):\n    return '-'.join(w.capitalize() for w in s.split())", "'hello big world'", "'Hello-Big-World'"),
    # list work
    ("def f(xs):\n    out = sorted(set(xs))\n    return out[::-1]", "[3, 1, 3, 2]", "[3, 2, 1]"),
    # dict work
    (
        "def f(words):\n    counts = {}\n    for w in words:\n        counts[w] = counts.get(w, 0) + 1\n    return counts",
        "['a', 'b', 'a']",
        "{'a': 2, 'b': 1}",
    ),
    # recursion
    ("def f(n):\n    if n < 2:\n        return n\n    return f(n - 1) + f(n - 2)", "10", "55"),
    # helper function and two arguments
    ("def helper(a, b):\n    return a * b\n\ndef f(x, y):\n    return helper(x, y) + 1", "6, 7", "43"),
    # a class inside the program
    (
        "class Stack:\n    def __init__(self):\n        self.items = []\n    def push(self, x):\n        self.items.append(x)\n\n"
        "def f(xs):\n    s = Stack()\n    for x in xs:\n        s.push(x * 2)\n    return tuple(s.items)",
        "[1, 2]",
        "(2, 4)",
    ),
    # allowed imports
    ("import math\nfrom collections import Counter\n\ndef f(xs):\n    return math.gcd(*xs), Counter(xs).most_common(1)[0][0]", "[12, 18, 12]", "(6, 12)"),
]


@pytest.mark.parametrize("program, input, expected", BENIGN)
def test_benign_programs_validate_and_verify(env, program, input, expected):
    task = task_for(env, program, input)
    assert task.task_type == "deduction"
    assert task.payload["program"] == program and task.payload["input"] == input
    verdicts = score(env, task, [expected, "'certainly wrong'"])
    assert verdicts[0].correct and verdicts[0].format_ok, verdicts[0].reason
    assert verdicts[1].score == 0.0 and verdicts[1].format_ok and "wrong output" in verdicts[1].reason


def test_answer_formatting_does_not_matter(env):
    task = task_for(env, "def f(s):\n    return {'k': s, 'n': [1, 2]}", "'v'")
    verdicts = score(env, task, ['{"n": [1,2], "k": "v"}', "{'k': 'v', 'n': [1, 2]}"])
    assert [v.score for v in verdicts] == [1.0, 1.0]


def test_type_aware_equality(env):
    one = task_for(env, "def f(x):\n    return x + 0", "1")
    assert [v.score for v in score(env, one, ["1", "1.0", "True"])] == [1.0, 0.0, 0.0]
    pair = task_for(env, "def f(a, b):\n    return (a, b)", "1, 2")
    assert [v.score for v in score(env, pair, ["(1, 2)", "[1, 2]"])] == [1.0, 0.0]
    sets = task_for(env, "def f(xs):\n    return set(xs)", "[3, 1, 2]")
    assert [v.score for v in score(env, sets, ["{1, 2, 3}", "{3, 2, 1}", "[1, 2, 3]"])] == [1.0, 1.0, 0.0]


def test_unparseable_answers_are_format_failures(env):
    task = task_for(env, "def f(s):\n    return s[::-1]", "'abc'")
    prompt = env.solver_prompt(task)
    responses = ["no answer at all", "<answer>```output\ncba\n```</answer>", "<answer>```python\nx = 1\n```</answer>"]
    verdicts = env.verify([task] * 3, [prompt] * 3, responses)
    assert all(v.score == 0.0 and not v.format_ok and v.reason for v in verdicts)


def test_answers_are_never_evaluated_in_this_process(env):
    """Trap: the original eval'd deduction answers in the trainer."""
    task = task_for(env, "def f(a):\n    return a", "'x'")
    sneaky = "__import__('sys').modules.__setitem__('azr_pwned', 1) or 'x'"
    verdicts = score(env, task, [sneaky])
    assert verdicts[0].score == 0.0 and not verdicts[0].format_ok
    assert "azr_pwned" not in sys.modules


def test_always_equal_object_cannot_earn_reward(env):
    task = task_for(env, "def f(a):\n    return a", "'x'")
    always_equal = "type('A', (), {'__eq__': lambda self, other: True})()"
    assert score(env, task, [always_equal])[0].score == 0.0


def test_long_gold_output_is_kept_whole(env):
    """Trap: the original truncated gold outputs to 400 characters."""
    task = task_for(env, "def f(n):\n    return 'ab' * n", "300")
    assert len(task.payload["output"]) == 602
    full = "'" + "ab" * 300 + "'"
    assert [v.score for v in score(env, task, [full, full[:400] + "'"])] == [1.0, 0.0]


@pytest.mark.parametrize(
    "program, input, reason",
    [
        ("def f(x):\n    return 1 // x", "0", "ZeroDivisionError"),
        ("def f(x):\n    while True:\n        x += 1", "0", "timeout"),
        ("import os\n\ndef f(x):\n    return os.getcwd()", "0", "program run failed"),
        ("def f(x):\n    return open('/etc/passwd').read()", "0", "program run failed"),
        ("def f(x):\n    return object()", "0", "program run failed"),
        ("def f(x):\n    return x / 0.0 if False else float('nan')", "0", "program run failed"),
    ],
)
def test_invalid_proposals_are_rejected_with_reasons(env, program, input, reason):
    validation = propose(env, program, input)
    assert not validation.valid and validation.format_ok
    assert reason in validation.reason


def test_nondeterministic_program_is_rejected(env):
    program = "def f(x):\n    return hash('salt' + x) % 1000003"
    validation = propose(env, program, "'abc'")
    assert not validation.valid and validation.format_ok
    assert "nondeterministic" in validation.reason


def test_output_over_limit_is_rejected_not_truncated():
    with CodeEnvironment(workers=1, max_output_chars=50) as small:
        validation = propose(small, "def f(n):\n    return 'x' * n", "100")
        assert not validation.valid and "more than the limit of 50" in validation.reason


def test_batch_sizes_and_order_preserved(env):
    task = task_for(env, "def f(xs):\n    return sum(xs)", "[1, 2, 3]")
    literals = ["6", "7", "6.0", "6", "'6'"]
    prompt = env.solver_prompt(task)
    responses = [answer(x) for x in literals] + ["garbage"]
    verdicts = env.verify([task] * 6, [prompt] * 6, responses)
    assert [v.score for v in verdicts] == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    assert [v.format_ok for v in verdicts] == [True] * 5 + [False]
