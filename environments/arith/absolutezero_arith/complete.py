"""Task type ``complete``: the solver sees an expression with one number hidden (``?``)
and its value, and gives a number for the hole.

The hidden number is the last literal of the proposed expression (deterministic, so
validation needs no randomness). Any number that makes the expression take the stated
value is correct (``? * 0 = 0`` has many solutions), checked by placing the answer into
the tree as a literal and evaluating it with the same limits.
"""

from __future__ import annotations

import ast

from absolutezero.protocol import Task
from absolutezero_arith.expr import ExpressionError, Limits, evaluate, literals, render, substitute

TASK_TYPE = "complete"

PROPOSER_GOAL = (
    "Write a new integer arithmetic expression. Its last number will be hidden and a "
    "student must find a number that makes the expression take its value, so make it "
    "neither trivial nor impossible to work out by hand."
)


def make_task(tree: ast.expr, limits: Limits) -> Task:
    """The task for a checked tree: the expression, the hole (last number) and the value.

    Raises:
        ExpressionError: evaluating the expression fails (division by zero, too large).
    """
    value = evaluate(tree, limits)
    hole = len(literals(tree)) - 1
    return Task(
        TASK_TYPE,
        {
            "expression": render(tree),
            "hole": hole,
            "template": render(tree, hole=hole),
            "value": value,
        },
    )


def show_reference(task: Task) -> str:
    """How a buffered task appears as an example in the proposer prompt."""
    return f"<answer>{task.payload['expression']}</answer>"


def question(task: Task) -> str:
    """The solver's question."""
    return (
        "In the equation below, ? stands for a missing integer (Python semantics: // is "
        "floor division, % takes the sign of the divisor):\n\n"
        f"{task.payload['template']} = {task.payload['value']}\n\n"
        "Give an integer for ? inside <answer></answer> tags, e.g. <answer>7</answer>."
    )


def check(task: Task, answer: int, limits: Limits) -> str:
    """Empty string when ``answer`` in the hole gives the task's value, otherwise why not."""
    from absolutezero_arith.expr import parse

    tree = parse(task.payload["expression"], limits)
    try:
        got = evaluate(substitute(tree, int(task.payload["hole"]), answer), limits)
    except ExpressionError as error:
        return f"with ? = {answer}: {error}"
    expected = task.payload["value"]
    return "" if got == expected else f"with ? = {answer} the expression is {got}, not {expected}"
