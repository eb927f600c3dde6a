"""Settings, payloads, answer parsing and batching shared by the three task types.

Payloads (``Task.payload``, JSON):

* ``deduction`` / ``abduction``: ``database`` (the proposer's script), ``query``,
  ``result`` (the rows as SQL literals, one per line, see :mod:`.values`), ``ordered``
  (compare as a list or as a multiset) and ``schema`` (the CREATE TABLE statements
  SQLite recorded, so induction can reuse the tables).
* ``induction``: ``query``, ``schema``, ``databases`` (INSERT-only scripts, run after
  the schema), ``results`` (parallel), ``message``, ``visible`` / ``hidden`` (index
  lists), ``ordered``.

Batching: a mode turns one proposal or answer into a finished result (e.g. a parse
failure) or a :class:`Pending` item listing its sandbox jobs and a ``finish`` function;
:func:`settle` runs the jobs of a whole batch in one pool call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from .values import ResultFormatError, parse_rows

__all__ = [
    "Settings",
    "Pending",
    "PoolLike",
    "settle",
    "FormatError",
    "answer_blocks",
    "require_block",
    "schema_script",
    "check_payload",
    "normalise",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """The environment's options that the task types read."""

    max_script_chars: int
    max_query_chars: int
    max_message_chars: int
    max_answer_chars: int
    max_result_rows: int
    num_induction_databases: int
    min_induction_databases: int
    max_shown_references: int
    reject_reference_copies: bool
    prefill: str


class PoolLike(Protocol):
    def run_many(self, jobs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Pending(Generic[T]):
    """Sandbox jobs one item needs, each run ``runs`` times, and how to finish it.

    ``finish`` receives, per job, the list of its ``runs`` results.
    """

    jobs: tuple[dict[str, Any], ...]
    finish: Callable[[list[list[dict[str, Any]]]], T]
    runs: int = 1


def settle(pool: PoolLike, items: Sequence[T | Pending[T]]) -> list[T]:
    """Resolve every :class:`Pending` item with one ``run_many`` call for the batch."""
    flat: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, Pending):
            for job in item.jobs:
                flat.extend([job] * item.runs)
    results = pool.run_many(flat) if flat else []
    if len(results) != len(flat):
        raise RuntimeError(f"the sandbox returned {len(results)} results for {len(flat)} jobs")
    settled: list[T] = []
    at = 0
    for item in items:
        if not isinstance(item, Pending):
            settled.append(item)
            continue
        grouped = []
        for _ in item.jobs:
            grouped.append(results[at : at + item.runs])
            at += item.runs
        settled.append(item.finish(grouped))
    return settled


class FormatError(ValueError):
    """A response that does not contain the blocks its role must write."""


_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.DOTALL)
_BLOCK = re.compile(r"```[ \t]*([A-Za-z]+)[ \t]*\n(.*?)```", re.DOTALL)


def answer_blocks(response: str) -> list[tuple[str, str]]:
    """``(tag, body)`` of every fenced block inside the last ``<answer>`` (or the whole text)."""
    if not isinstance(response, str):
        raise FormatError(f"a response must be text, got {type(response).__name__}")
    answers = _ANSWER.findall(response)
    text = answers[-1] if answers else response
    return [(tag.lower(), body.strip()) for tag, body in _BLOCK.findall(text)]


def require_block(blocks: Sequence[tuple[str, str]], tag: str, limit: int) -> str:
    """The last non-empty ```tag block, within ``limit`` characters.

    Raises:
        FormatError: missing, empty or too long.
    """
    bodies = [body for name, body in blocks if name == tag]
    if not bodies:
        raise FormatError(f"no ```{tag} block in the answer")
    body = bodies[-1]
    if not body:
        raise FormatError(f"the ```{tag} block is empty")
    if len(body) > limit:
        raise FormatError(f"the ```{tag} block is {len(body)} characters long, more than the limit of {limit}")
    return body


def schema_script(schema: Sequence[str], inserts: str) -> str:
    """A full database script: the recorded CREATE TABLE statements, then ``inserts``."""
    return ";\n".join(str(s) for s in schema) + ";\n" + inserts


def normalise(text: str) -> str:
    """Whitespace-collapsed, case-folded text, for spotting copies of references."""
    return " ".join(text.split()).rstrip(";").lower()


_TRIPLET_KEYS = ("database", "query", "result", "ordered", "schema")
_INDUCTION_KEYS = ("query", "schema", "databases", "results", "message", "visible", "hidden", "ordered")


def check_payload(task_type: str, payload: Mapping[str, Any]) -> None:
    """Raise ValueError with a clear message if a payload is malformed."""
    keys = _INDUCTION_KEYS if task_type == "induction" else _TRIPLET_KEYS
    missing = [key for key in keys if key not in payload]
    if missing:
        raise ValueError(f"{task_type} payload lacks {missing}")
    results = payload["results"] if task_type == "induction" else [payload["result"]]
    try:
        for result in results:
            parse_rows(str(result))
    except ResultFormatError as error:
        raise ValueError(f"{task_type} payload has a malformed result: {error}") from None
    if task_type == "induction":
        count = len(payload["databases"])
        if len(payload["results"]) != count or not all(
            isinstance(i, int) and 0 <= i < count for i in [*payload["visible"], *payload["hidden"]]
        ):
            raise ValueError("induction payload: databases/results/visible/hidden do not match")
