"""Task type ``evaluate``: the solver sees an expression and gives its value."""

from __future__ import annotations

import ast

from absolutezero.protocol import Task
from absolutezero_arith.expr import Limits, evaluate, render

TASK_TYPE = "evaluate"

PROPOSER_GOAL = (
    "Write a new integer arithmetic expression for a student to compute. It should be "
    "neither trivial nor impossible to work out by hand."
)


def make_task(tree: ast.expr, limits: Limits) -> Task:
    """The task for a checked tree: canonical expression and its gold value.

    Raises:
        ExpressionError: evaluating the expression fails (division by zero, too large).
    """
    return Task(TASK_TYPE, {"expression": render(tree), "value": evaluate(tree, limits)})


def show_reference(task: Task) -> str:
    """How a buffered task appears as an example in the proposer prompt."""
    return f"<answer>{task.payload['expression']}</answer>"


def question(task: Task) -> str:
    """The solver's question."""
    return (
        "Compute the value of this integer expression (Python semantics: // is floor "
        "division, % takes the sign of the divisor):\n\n"
        f"{task.payload['expression']}\n\n"
        "Give only the resulting integer inside <answer></answer> tags, e.g. <answer>42</answer>."
    )


def check(task: Task, answer: int, limits: Limits) -> str:
    """Empty string when ``answer`` is the gold value, otherwise why it is wrong."""
    gold = task.payload["value"]
    return "" if answer == gold else f"expected {gold}, got {answer}"
