"""The arith environment: whitelisted parsing, evaluation, task types, verification."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from absolutezero.protocol import Prompt, Task
from absolutezero_arith import ArithEnvironment
from absolutezero_arith.expr import ExpressionError, ExpressionSyntaxError, Limits, evaluate, literals, parse, render, substitute
from absolutezero_arith.parsing import ParseError, extract_answer, parse_int

LIMITS = Limits()


def expressions(depth: int = 3):
    leaf = st.integers(-50, 50).map(lambda v: f"({v})" if v < 0 else str(v))
    return st.recursive(
        leaf,
        lambda inner: st.tuples(inner, st.sampled_from(["+", "-", "*", "//", "%"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        max_leaves=8,
    )


@settings(max_examples=200, deadline=None)
@given(expressions())
def test_evaluation_matches_python_arithmetic(text):
    # Python's own integer arithmetic is the oracle here (test code, trusted input).
    try:
        expected = eval(text, {"__builtins__": {}})  # noqa: S307
    except ZeroDivisionError:
        with pytest.raises(ExpressionError, match="division by zero"):
            evaluate(parse(text, LIMITS), LIMITS)
        return
    limits = Limits(max_chars=10_000, max_nodes=10_000, max_depth=100, max_value=10**30)
    tree = parse(text, limits)
    assert evaluate(tree, limits) == expected
    assert evaluate(parse(render(tree), limits), limits) == expected  # canonical text round trip


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("2 ** 3", "Pow is not allowed"),
        ("6 / 3", "Div is not allowed"),
        ("x + 1", "Name is not allowed"),
        ("abs(-3)", "Call is not allowed"),
        ("1.5 + 1", "only integer numbers"),
        ("True + 1", "only integer numbers"),
        ("'a' * 3", "only integer numbers"),
        ("[1][0] + 1", "Subscript is not allowed"),
        ("1 if 1 else 2", "IfExp is not allowed"),
        ("(1).__class__", "Attribute is not allowed"),
        ("1001 + 1", "larger than 1000"),
        ("1 + (2 + (3 + (4 + (5 + (6 + (7 + 8))))))", "nested more than 6"),
        ("1000 * 1000 * 1000 * 2", "exceeds 1000000000"),
        ("5 // (3 - 3)", "division by zero"),
        ("5 % 0", "division by zero"),
    ],
)
def test_forbidden_or_oversized_expressions(text, fragment):
    with pytest.raises(ExpressionError, match=fragment):
        evaluate(parse(text, LIMITS), LIMITS)


def test_node_limit():
    with pytest.raises(ExpressionError, match="has 33 operators and numbers"):
        parse("+".join(["1"] * 17), Limits(max_depth=100))
    assert evaluate(parse("+".join(["1"] * 16), Limits(max_depth=100)), LIMITS) == 16


@pytest.mark.parametrize("text", ["", "   ", "1 +", "(1", "1 2", "x" * 300, "1\x00"])
def test_syntax_errors_are_their_own_kind(text):
    with pytest.raises(ExpressionSyntaxError):
        parse(text, LIMITS)


def test_holes_and_substitution():
    tree = parse("3*(4+5) - -2", LIMITS)
    assert render(tree) == "3 * (4 + 5) - -2"
    assert [lit.value for lit in literals(tree)] == [3, 4, 5, 2]
    assert render(tree, hole=3) == "3 * (4 + 5) - -?"
    assert evaluate(substitute(tree, 1, 10), LIMITS) == 3 * 15 + 2
    assert render(tree) == "3 * (4 + 5) - -2"  # substitution does not mutate
    with pytest.raises(ExpressionError, match="no number #4"):
        substitute(tree, 4, 1)


def test_answer_parsing():
    assert extract_answer("<answer>1</answer> think <answer> 42 </answer>") == "42"
    assert extract_answer("<ANSWER>7</ANSWER>") == "7"
    with pytest.raises(ParseError, match="no <answer>"):
        extract_answer("<answer>unterminated")
    assert parse_int(" -12 ") == -12 and parse_int("+3") == 3
    for bad in ["1.0", "1e3", "0x10", "1) or (1", "seven", "1_000", ""]:
        with pytest.raises(ParseError, match="not a plain integer"):
            parse_int(bad)


def test_limits_must_be_positive_integers():
    with pytest.raises(ValueError, match="max_depth must be a positive integer"):
        ArithEnvironment(max_depth=0)
    with pytest.raises(ValueError, match="max_chars must be a positive integer"):
        ArithEnvironment(max_chars=True)


@pytest.fixture
def env() -> ArithEnvironment:
    return ArithEnvironment()


def test_seed_tasks(env):
    assert env.task_types == ("evaluate", "complete")
    assert env.seed_tasks("evaluate") == [Task("evaluate", {"expression": "1 + 1", "value": 2})]
    assert env.seed_tasks("complete") == [
        Task("complete", {"expression": "1 + 1", "hole": 1, "template": "1 + ?", "value": 2})
    ]
    with pytest.raises(ValueError, match="unknown arith task type 'deduction'"):
        env.seed_tasks("deduction")


def test_proposer_prompt_lists_references_in_seeded_order(env):
    refs = [Task("evaluate", {"expression": f"{i} + 1", "value": i + 1}) for i in range(1, 6)]
    first = env.proposer_prompt("evaluate", refs, np.random.default_rng(7))
    assert first == env.proposer_prompt("evaluate", refs, np.random.default_rng(7))
    content = first.messages[-1]["content"]
    assert all(f"<answer>{i} + 1</answer>" in content for i in range(1, 6))
    orders = {env.proposer_prompt("evaluate", refs, np.random.default_rng(s)).messages[-1]["content"] for s in range(10)}
    assert len(orders) > 1
    assert "Existing expressions" not in env.proposer_prompt("evaluate", [], np.random.default_rng(0)).messages[-1]["content"]


def test_validate_distinguishes_format_from_rule_failures(env):
    prompt = env.proposer_prompt("evaluate", [], np.random.default_rng(0))
    results = env.validate(
        [prompt] * 6,
        ["<answer>2*(3+4)</answer>", "no tags", "<answer>2 +</answer>", "<answer>2 ** 3</answer>",
         "<answer>9</answer>", "<answer>1 // 0</answer>"],
    )
    assert results[0].task == Task("evaluate", {"expression": "2 * (3 + 4)", "value": 14})
    assert [r.format_ok for r in results[1:]] == [False, False, True, True, True]
    assert "at least one operator" in results[4].reason and "division by zero" in results[5].reason
    with pytest.raises(ValueError, match="same length"):
        env.validate([prompt], [])
    foreign = Prompt(messages=({"role": "user", "content": "x"},))
    with pytest.raises(ValueError, match="Prompt built by proposer_prompt"):
        env.validate([foreign], ["<answer>1+1</answer>"])


def test_evaluate_verification(env):
    task = env.validate([env.proposer_prompt("evaluate", [], np.random.default_rng(0))], ["<answer>-7 // 2</answer>"])[0].task
    assert task.payload["value"] == -4
    prompt = env.solver_prompt(task)
    assert "-7 // 2" in prompt.messages[-1]["content"]
    verdicts = env.verify([task] * 4, [prompt] * 4, ["<answer>-4</answer>", "<answer>-3</answer>", "-4", "<answer>-4.0</answer>"])
    assert [v.score for v in verdicts] == [1.0, 0.0, 0.0, 0.0]
    assert [v.format_ok for v in verdicts] == [True, True, False, False]
    assert verdicts[1].reason == "expected -4, got -3"


def test_complete_accepts_any_solution_and_never_pastes_text(env):
    task = env.validate([env.proposer_prompt("complete", [], np.random.default_rng(0))], ["<answer>7 % 3</answer>"])[0].task
    assert task.payload == {"expression": "7 % 3", "hole": 1, "template": "7 % ?", "value": 1}
    prompt = env.solver_prompt(task)
    assert "7 % ? = 1" in prompt.messages[-1]["content"]
    answers = ["<answer>3</answer>", "<answer>6</answer>", "<answer>4</answer>", "<answer>0</answer>",
               "<answer>1) or (1</answer>", "<answer>" + "9" * 30 + "</answer>"]
    verdicts = env.verify([task] * len(answers), [prompt] * len(answers), answers)
    assert [v.correct for v in verdicts] == [True, True, False, False, False, False]
    assert "division by zero" in verdicts[3].reason
    assert verdicts[4].format_ok is False
    assert "exceeds" in verdicts[5].reason


def test_serialisation_round_trip_and_tamper_detection(env):
    for task_type in env.task_types:
        task = env.validate([env.proposer_prompt(task_type, [], np.random.default_rng(0))], ["<answer>(5 - 8) * 3</answer>"])[0].task
        assert env.deserialize_task(env.serialize_task(task)) == task
    data = env.serialize_task(task)
    data["payload"]["value"] = 0
    with pytest.raises(ValueError, match="inconsistent with its expression"):
        env.deserialize_task(data)
    data["payload"]["expression"] = "__import__('os')"
    with pytest.raises(ValueError, match="bad expression"):
        env.deserialize_task(data)
    with pytest.raises(ValueError, match="not one of 'arith'"):
        env.deserialize_task({"task_type": "deduction", "payload": {}})


def test_canonical_form_deduplicates(env):
    prompt = env.proposer_prompt("evaluate", [], np.random.default_rng(0))
    a, b = env.validate([prompt] * 2, ["<answer>1+2*3</answer>", "<answer>(1) + (2 * 3)</answer>"])
    assert a.task.key() == b.task.key()
