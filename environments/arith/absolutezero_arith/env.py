"""ArithEnvironment: a tiny integer-arithmetic self-play environment (``arith``).

It exists to show that the core (buffers, rewards, TRR++, the loop, the Gymnasium
adapter) works for more than code, and to give the core's tests an environment that is
fast and needs no sandbox: expressions are parsed into a whitelisted tree and evaluated
by a tiny interpreter, never ``eval``'d (see :mod:`absolutezero_arith.expr`).

Task types (one module each):

* ``evaluate`` -- the proposer writes an expression; the solver gives its value.
* ``complete`` -- the proposer writes an expression; its last number is hidden and the
  solver gives any number that makes the expression take the stated value.

Both roles answer inside ``<answer>...</answer>`` tags; the last block counts.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from absolutezero.protocol import Environment, Prompt, Task, Validation, Verdict
from absolutezero_arith import complete, evaluate
from absolutezero_arith.expr import ExpressionError, ExpressionSyntaxError, Limits, parse
from absolutezero_arith.parsing import ParseError, extract_answer, parse_int

__all__ = ["ArithEnvironment"]

_MODULES: dict[str, ModuleType] = {evaluate.TASK_TYPE: evaluate, complete.TASK_TYPE: complete}
SEED_EXPRESSION = "1 + 1"
SYSTEM_PROMPT = "You are a careful assistant who is good at integer arithmetic."


class ArithEnvironment(Environment):
    """Integer arithmetic proposals and answers.

    Args:
        max_chars: longest accepted expression, in characters.
        max_nodes: most numbers plus operators in one expression.
        max_depth: deepest operator nesting.
        max_literal: largest absolute value of a number written in an expression.
        max_value: largest absolute value of the result and every intermediate value
            (and of a ``complete`` answer).

    Raises:
        ValueError: a limit that is not a positive integer.
    """

    name: ClassVar[str] = "arith"
    task_types: ClassVar[tuple[str, ...]] = (evaluate.TASK_TYPE, complete.TASK_TYPE)

    def __init__(
        self,
        max_chars: int = 200,
        max_nodes: int = 31,
        max_depth: int = 6,
        max_literal: int = 1000,
        max_value: int = 10**9,
    ) -> None:
        self.limits = Limits(max_chars, max_nodes, max_depth, max_literal, max_value)

    def _module(self, task_type: str) -> ModuleType:
        if task_type not in _MODULES:
            raise ValueError(f"unknown arith task type {task_type!r}; expected one of {self.task_types}")
        return _MODULES[task_type]

    def seed_tasks(self, task_type: str) -> list[Task]:
        """One task built from ``1 + 1``, so every buffer starts non-empty."""
        return [self._module(task_type).make_task(parse(SEED_EXPRESSION, self.limits), self.limits)]

    def proposer_prompt(
        self, task_type: str, references: Sequence[Task], rng: np.random.Generator
    ) -> Prompt:
        """Instructions, the rules, and the references (in an ``rng``-shuffled order)."""
        module = self._module(task_type)
        order = rng.permutation(len(references)) if len(references) else []
        examples = "\n".join(module.show_reference(references[i]) for i in order)
        limits = self.limits
        text = (
            f"{module.PROPOSER_GOAL}\n\n"
            f"Rules: use only integers (at most {limits.max_literal} in absolute value), the "
            "operators + - * // % (Python semantics: // is floor division, % takes the sign "
            f"of the divisor) and parentheses; at least one operator; at most "
            f"{limits.max_nodes} numbers and operators; no division by zero.\n\n"
            + (f"Existing expressions (write a different one):\n{examples}\n\n" if examples else "")
            + "Write the expression inside <answer></answer> tags, e.g. <answer>(3 + 4) * 2</answer>."
        )
        return Prompt(
            messages=(
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": text},
            ),
            context={"task_type": task_type},
        )

    def _validate_one(self, prompt: Prompt, response: str) -> Validation:
        task_type = prompt.context.get("task_type") if isinstance(prompt.context, Mapping) else None
        if task_type not in self.task_types:
            raise ValueError(
                "validate() needs the Prompt built by proposer_prompt(): its context has no "
                f"arith task type (got {task_type!r})"
            )
        try:
            tree = parse(extract_answer(response), self.limits)
        except (ParseError, ExpressionSyntaxError) as error:
            return Validation(None, reason=str(error), format_ok=False)
        except ExpressionError as error:
            return Validation(None, reason=str(error), format_ok=True)
        if not any(isinstance(node, (ast.BinOp, ast.UnaryOp)) for node in ast.walk(tree)):
            return Validation(None, reason="the expression needs at least one operator")
        try:
            return Validation(self._module(task_type).make_task(tree, self.limits))
        except ExpressionError as error:
            return Validation(None, reason=str(error))

    def validate(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[Validation]:
        """A task per well-formed, allowed, evaluable expression; a reason otherwise.

        ``format_ok`` is False when there is no answer block or it does not parse as an
        expression, True when it parsed but broke a rule (forbidden construct, limits,
        division by zero, no operator).
        """
        _same_length(prompts, responses, "prompts", "responses")
        return [self._validate_one(p, r) for p, r in zip(prompts, responses)]

    def solver_prompt(self, task: Task) -> Prompt:
        """The question for ``task`` (expression, or equation with a hole)."""
        question = self._module(task.task_type).question(task)
        return Prompt(
            messages=(
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": question},
            ),
        )

    def _verify_one(self, task: Task, response: str) -> Verdict:
        try:
            answer = parse_int(extract_answer(response))
        except ParseError as error:
            return Verdict(0.0, format_ok=False, reason=str(error))
        reason = self._module(task.task_type).check(task, answer, self.limits)
        return Verdict(0.0 if reason else 1.0, reason=reason)

    def verify(
        self, tasks: Sequence[Task], prompts: Sequence[Prompt], responses: Sequence[str]
    ) -> list[Verdict]:
        """Score 1 for a correct integer answer, 0 otherwise (``format_ok`` False if unparseable)."""
        _same_length(tasks, responses, "tasks", "responses")
        _same_length(tasks, prompts, "tasks", "prompts")
        return [self._verify_one(t, r) for t, r in zip(tasks, responses)]

    def deserialize_task(self, data: Mapping[str, Any]) -> Task:
        """Rebuild a task and check it: the stored expression must re-validate to the same task.

        Raises:
            ValueError: unknown task type, or a payload that is malformed or inconsistent
                (e.g. an edited gold value).
        """
        task = super().deserialize_task(data)
        expression = task.payload.get("expression")
        try:
            rebuilt = self._module(task.task_type).make_task(parse(str(expression), self.limits), self.limits)
        except ExpressionError as error:
            raise ValueError(f"stored arith task has a bad expression {expression!r}: {error}") from None
        if rebuilt != task:
            raise ValueError(
                f"stored arith task is inconsistent with its expression: {task.to_json()} "
                f"(expected {rebuilt.to_json()})"
            )
        return rebuilt


def _same_length(a: Sequence[Any], b: Sequence[Any], a_name: str, b_name: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{a_name} and {b_name} must have the same length, got {len(a)} and {len(b)}")
