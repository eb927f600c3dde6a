"""Induction: the solver sees some (database, result) pairs and a message, writes the query.

Proposing (mirrors the code environment's induction): the proposer gets an existing
query with its tables (drawn with the caller's ``rng`` from the references, which come
from the deduction and abduction buffers) and writes ``num_induction_databases``
databases -- INSERT statements only, run after the reference's recorded CREATE TABLE
statements -- plus a message. Validation keeps the first ``num_induction_databases``
blocks, drops duplicates and blocks that create tables, and runs the query on each in
the sandbox (two runs, re-orderings; see :mod:`.gold`). Databases whose run fails are
dropped; at least ``min_induction_databases`` must survive (so at least two visible and
two hidden pairs), otherwise the proposal is rejected with the first failure.

Split: the first ``ceil(k / 2)`` surviving pairs (proposer's order) are visible, the rest
hidden; deterministic, so a task's identity does not depend on a random draw.

Solving: the solver's query runs once on every hidden database (through the same query
policy); correct iff each result equals the gold rows (list or multiset, as the task's
``ordered`` says).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from absolutezero.protocol import Prompt, Task, Validation, Verdict

from . import prompts
from .gold import Gold, describe, gold_from_runs
from .proposals import chat_prompt
from .sqltext import row_skeleton, script_keywords
from .tasks import FormatError, Pending, Settings, answer_blocks, normalise, require_block, schema_script
from .values import decode_rows, format_rows, parse_rows, same_result

__all__ = ["Induction", "FALLBACK"]

#: Used when no reference with tables is available yet: (query, schema, example inserts).
FALLBACK = ("SELECT x FROM t ORDER BY x", ["CREATE TABLE t (x INTEGER)"])


class Induction:
    """Induction task type: proposals are databases + message for a given query."""

    task_type = "induction"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def proposer_prompt(self, references: Sequence[Task], rng: np.random.Generator) -> Prompt:
        """Show one reference query and its tables (chosen with ``rng``); ask for databases."""
        candidates = [ref.payload for ref in references if "schema" in ref.payload and "database" in ref.payload]
        if candidates:
            chosen = candidates[int(rng.integers(len(candidates)))]
            query, schema = str(chosen["query"]), [str(s) for s in chosen["schema"]]
            example: str | None = str(chosen["database"])
        else:
            (query, schema), example = FALLBACK, None
        row = row_skeleton(schema[0]) if len(schema) == 1 else None
        messages = prompts.induction_proposer_messages(query, schema, example, self.settings.num_induction_databases, row)
        return chat_prompt(messages, {"task_type": self.task_type, "query": query, "schema": schema})

    def validate(self, prompt: Prompt, response: str) -> Validation | Pending[Validation]:
        settings = self.settings
        query, schema = prompt.context.get("query"), prompt.context.get("schema")
        if not isinstance(query, str) or not isinstance(schema, list):
            raise ValueError("an induction prompt needs context['query'] and context['schema'] (build it with proposer_prompt)")
        try:
            blocks = answer_blocks(response)
            message = require_block(blocks, "message", settings.max_message_chars)
        except FormatError as error:
            return Validation(task=None, reason=str(error), format_ok=False)
        databases: list[str] = []
        seen: set[str] = set()
        problem = ""
        for tag, body in [b for b in blocks if b[0] == "database"][: settings.num_induction_databases]:
            if not body or len(body) > settings.max_script_chars:
                problem = problem or f"a ```database block is empty or longer than {settings.max_script_chars} characters"
            elif "CREATE" in script_keywords(body):
                problem = problem or "an induction database is INSERT statements only (the tables are given)"
            elif normalise(body) not in seen:
                seen.add(normalise(body))
                databases.append(body)
        need = settings.min_induction_databases
        if len(databases) < need:
            detail = f" (first problem: {problem})" if problem else ""
            return Validation(task=None, reason=f"only {len(databases)} distinct well-formed databases, need at least {need}{detail}", format_ok=False)

        def finish(runs: list[list[dict[str, Any]]]) -> Validation:
            kept: list[tuple[str, Gold]] = []
            first = ""
            for inserts, job_runs in zip(databases, runs):
                gold = gold_from_runs(query, job_runs)
                if isinstance(gold, Gold):
                    kept.append((inserts, gold))
                else:
                    first = first or gold
            if len(kept) < need:
                return Validation(task=None, reason=f"only {len(kept)} databases gave a result, need at least {need} (first failure: {first})")
            visible = (len(kept) + 1) // 2
            payload = {
                "query": query,
                "schema": list(schema),
                "databases": [inserts for inserts, _ in kept],
                "results": [format_rows(gold.rows) for _, gold in kept],
                "message": message,
                "visible": list(range(visible)),
                "hidden": list(range(visible, len(kept))),
                "ordered": all(gold.ordered for _, gold in kept),
            }
            return Validation(task=Task(self.task_type, payload))

        jobs = tuple({"script": schema_script(schema, d), "query": query, "variants": True} for d in databases)
        return Pending(jobs=jobs, finish=finish, runs=2)

    def solver_prompt(self, task: Task) -> Prompt:
        payload = task.payload
        pairs = [(str(payload["databases"][i]), str(payload["results"][i])) for i in payload["visible"]]
        messages = prompts.induction_solver_messages([str(s) for s in payload["schema"]], pairs, str(payload["message"]))
        return chat_prompt(messages, {"task_type": self.task_type})

    def verify(self, task: Task, response: str) -> Verdict | Pending[Verdict]:
        """1 iff the solver's query reproduces every hidden (database, result) pair."""
        try:
            query = require_block(answer_blocks(response), "query", self.settings.max_query_chars)
        except FormatError as error:
            return Verdict(score=0.0, format_ok=False, reason=str(error))
        payload = task.payload
        hidden = [int(i) for i in payload["hidden"]]
        schema = [str(s) for s in payload["schema"]]
        ordered = bool(payload["ordered"])
        jobs = tuple({"script": schema_script(schema, str(payload["databases"][i])), "query": query, "variants": False} for i in hidden)

        def finish(runs: list[list[dict[str, Any]]]) -> Verdict:
            for index, job_runs in zip(hidden, runs):
                result = job_runs[0]
                if not result.get("ok"):
                    return Verdict(score=0.0, reason=describe(result))
                expected = str(payload["results"][index])
                rows = decode_rows(result["rows"])
                if not same_result(parse_rows(expected), rows, ordered):
                    return Verdict(score=0.0, reason=f"on hidden database {index} the query returns {format_rows(rows)[:80]!r}, expected {expected[:80]!r}")
            return Verdict(score=1.0)

        return Pending(jobs=jobs, finish=finish)
