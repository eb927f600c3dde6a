"""Task payloads, environment settings, and batching of executor work.

Payloads (``Task.payload``, JSON) of the code environment:

* ``deduction`` / ``abduction``: ``program`` (source defining ``f``), ``input`` (the
  argument list as literal text, e.g. ``"'abc', 3"``) and ``output`` (the executor's
  canonical repr of ``f(*args)``, never truncated).
* ``induction``: the same three keys (the first pair, so every payload can be shown as a
  reference) plus ``inputs`` and ``outputs`` (parallel lists), ``message`` (the
  proposer's hint), and ``visible`` / ``hidden`` (index lists splitting the pairs: the
  solver sees the visible pairs, and is correct iff its program reproduces every hidden
  pair).

Batching: each task type's module turns one proposal or answer into either a finished
result (a parse failure needs no executor) or a :class:`Pending` item listing the
executor jobs it needs and a ``finish`` function. :func:`settle` runs the jobs of a whole
batch in one ``run_many`` and one ``canonicalize_many`` call, so the executor's worker
pool sees the whole batch at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

__all__ = [
    "TRIPLET_KEYS",
    "INDUCTION_KEYS",
    "Settings",
    "ExecutorLike",
    "ResultLike",
    "Pending",
    "settle",
    "triplet_payload",
    "induction_payload",
    "check_payload",
    "describe_failure",
]

TRIPLET_KEYS = ("program", "input", "output")
INDUCTION_KEYS = TRIPLET_KEYS + ("inputs", "outputs", "message", "visible", "hidden")

T = TypeVar("T")


class ResultLike(Protocol):
    """What the environment reads from an executor ``RunResult``."""

    status: Any
    output: str | None
    reason: str

    @property
    def ok(self) -> bool: ...


class ExecutorLike(Protocol):
    """The executor interface of docs/architecture.md ("Code environment executor")."""

    def run_many(
        self, jobs: Sequence[tuple[str, str]], determinism_runs: int = 2
    ) -> Sequence[ResultLike]: ...

    def canonicalize_many(self, literals: Sequence[str]) -> Sequence[ResultLike]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Settings:
    """Limits and prompt options shared by the task-type modules.

    No defaults here: the values are :class:`CodeEnvironment`'s options, whose defaults
    are declared once, on its constructor.
    """

    max_program_chars: int
    max_input_chars: int
    max_output_chars: int
    max_message_chars: int
    max_answer_chars: int
    num_induction_inputs: int
    min_induction_inputs: int
    max_shown_references: int
    reject_reference_copies: bool
    prefill: str
    allowed_imports: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for name in (
            "max_program_chars", "max_input_chars", "max_output_chars", "max_message_chars",
            "max_answer_chars", "num_induction_inputs", "min_induction_inputs",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.max_shown_references, bool) or not isinstance(
            self.max_shown_references, int
        ) or self.max_shown_references < 0:
            raise ValueError(
                f"max_shown_references must be an integer >= 0, got {self.max_shown_references!r}"
            )
        if self.min_induction_inputs > self.num_induction_inputs:
            raise ValueError(
                f"min_induction_inputs ({self.min_induction_inputs}) cannot exceed "
                f"num_induction_inputs ({self.num_induction_inputs})"
            )
        if self.min_induction_inputs < 2:
            raise ValueError(
                "min_induction_inputs must be >= 2: induction needs at least one visible and "
                "one hidden pair"
            )
        if not isinstance(self.prefill, str):
            raise TypeError(f"prefill must be a str, got {type(self.prefill).__name__}")


@dataclass(frozen=True)
class Pending(Generic[T]):
    """Executor work one item needs before its result is known.

    ``runs`` are ``(program, input)`` jobs for ``Executor.run_many``; ``literals`` are
    texts for ``Executor.canonicalize_many``. ``finish(run_results, literal_results)``
    receives the results of exactly these jobs, in order, and returns the item's result.
    """

    finish: Callable[[Sequence[ResultLike], Sequence[ResultLike]], T]
    runs: tuple[tuple[str, str], ...] = ()
    literals: tuple[str, ...] = ()


def settle(
    executor: ExecutorLike, items: Sequence[T | Pending[T]], determinism_runs: int
) -> list[T]:
    """Resolve every :class:`Pending` item with at most two executor calls in total.

    Returns:
        The items' results in input order (finished items are passed through).

    Raises:
        RuntimeError: the executor returned a different number of results than jobs.
    """
    runs: list[tuple[str, str]] = []
    literals: list[str] = []
    for item in items:
        if isinstance(item, Pending):
            runs.extend(item.runs)
            literals.extend(item.literals)
    run_results = list(executor.run_many(runs, determinism_runs=determinism_runs)) if runs else []
    literal_results = list(executor.canonicalize_many(literals)) if literals else []
    if len(run_results) != len(runs) or len(literal_results) != len(literals):
        raise RuntimeError(
            f"executor returned {len(run_results)} run results for {len(runs)} jobs and "
            f"{len(literal_results)} literal results for {len(literals)} literals"
        )
    settled: list[T] = []
    run_at = literal_at = 0
    for item in items:
        if not isinstance(item, Pending):
            settled.append(item)
            continue
        mine_runs = run_results[run_at : run_at + len(item.runs)]
        mine_literals = literal_results[literal_at : literal_at + len(item.literals)]
        run_at += len(item.runs)
        literal_at += len(item.literals)
        settled.append(item.finish(mine_runs, mine_literals))
    return settled


def describe_failure(result: ResultLike) -> str:
    """``"error: ZeroDivisionError: division by zero"``-style text for a failed run."""
    status = getattr(result.status, "value", result.status)
    return f"{status}: {result.reason}" if result.reason else str(status)


def triplet_payload(program: str, input: str, output: str) -> dict[str, Any]:
    """The payload of a deduction or abduction task."""
    return {"program": program, "input": input, "output": output}


def induction_payload(
    program: str,
    inputs: Sequence[str],
    outputs: Sequence[str],
    message: str,
    num_visible: int,
) -> dict[str, Any]:
    """The payload of an induction task: the first ``num_visible`` pairs are shown.

    Raises:
        ValueError: lengths differ, or the split leaves no visible or no hidden pair.
    """
    if len(inputs) != len(outputs):
        raise ValueError(f"{len(inputs)} inputs but {len(outputs)} outputs")
    if not 0 < num_visible < len(inputs):
        raise ValueError(
            f"num_visible must leave at least one visible and one hidden pair, got "
            f"{num_visible} of {len(inputs)}"
        )
    return {
        "program": program,
        "input": inputs[0],
        "output": outputs[0],
        "inputs": list(inputs),
        "outputs": list(outputs),
        "message": message,
        "visible": list(range(num_visible)),
        "hidden": list(range(num_visible, len(inputs))),
    }


def check_payload(task_type: str, payload: Mapping[str, Any]) -> None:
    """Raise ValueError naming what is wrong with a (deserialised) payload."""
    keys = INDUCTION_KEYS if task_type == "induction" else TRIPLET_KEYS
    missing = [key for key in keys if key not in payload]
    if missing:
        raise ValueError(f"{task_type} payload is missing {missing}; it needs {list(keys)}")
    for key in ("program", "input", "output") + (("message",) if task_type == "induction" else ()):
        if not isinstance(payload[key], str):
            raise ValueError(f"{task_type} payload field {key!r} must be a str, got {payload[key]!r:.80}")
    if task_type != "induction":
        return
    inputs, outputs = payload["inputs"], payload["outputs"]
    if not (isinstance(inputs, list) and isinstance(outputs, list) and len(inputs) == len(outputs)):
        raise ValueError("induction payload 'inputs' and 'outputs' must be lists of equal length")
    split = list(payload["visible"]) + list(payload["hidden"])
    if sorted(split) != list(range(len(inputs))) or not payload["visible"] or not payload["hidden"]:
        raise ValueError(
            "induction payload 'visible' and 'hidden' must be non-empty and together index "
            "every pair exactly once"
        )
