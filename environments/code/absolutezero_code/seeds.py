"""The seed proposals that always exist: the identity triplet for every task type.

Seeds are written as proposer *responses* in the environment's own answer format and go
through the same validation as model proposals, so their gold outputs come from the
executor (never hard-coded) and a broken executor or parser shows up at start-up instead
of as silently wrong seeds.
"""

from __future__ import annotations

__all__ = ["IDENTITY_PROGRAM", "IDENTITY_INPUT", "INDUCTION_INPUTS", "INDUCTION_MESSAGE", "seed_response"]

IDENTITY_PROGRAM = "def f(a):\n    return a"
IDENTITY_INPUT = "'Hello World'"
# Strings and integers, all distinct, so the solver sees both kinds among the visible pairs.
INDUCTION_INPUTS = (
    "'Hello World'", "42", "'abc'", "-7", "'x y z'", "0", "'Python'", "3", "'racecar'", "100",
)
INDUCTION_MESSAGE = "The function gives back exactly what it receives."


def _fence(tag: str, body: str) -> str:
    return f"```{tag}\n{body}\n```"


def seed_response(task_type: str, num_inputs: int) -> str:
    """The identity seed as a proposer response for ``task_type``.

    For induction, ``num_inputs`` inputs are written (cycling through
    :data:`INDUCTION_INPUTS` with distinct integers appended if more are asked for).
    """
    if task_type in ("deduction", "abduction"):
        body = f"{_fence('python', IDENTITY_PROGRAM)}\n{_fence('input', IDENTITY_INPUT)}"
    elif task_type == "induction":
        inputs = list(INDUCTION_INPUTS[:num_inputs])
        inputs += [str(1000 + i) for i in range(num_inputs - len(inputs))]
        blocks = "\n".join(_fence("input", item) for item in inputs)
        body = f"{blocks}\n{_fence('message', INDUCTION_MESSAGE)}"
    else:
        raise ValueError(f"no seed for task type {task_type!r}")
    return f"<think>The identity function.</think>\n<answer>\n{body}\n</answer>"
