"""Proposing (database, query) pairs: shared by deduction and abduction.

Both modes ask the proposer for the same thing, a database script and a query; they
differ only in what the solver is later shown. A proposal is valid when both blocks are
there, it is not a copy of one of the prompt's references, the script passes the script
policy, the query passes the query policy and the limits, two runs in separate
processes agree, the result has at least one row, and it does not depend on an
unspecified row order (see :mod:`.gold`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from absolutezero.protocol import Prompt, Task, Validation

from . import prompts
from .gold import Gold, gold_from_runs
from .tasks import FormatError, Pending, Settings, answer_blocks, normalise, require_block
from .values import format_rows

__all__ = ["PairMode", "chat_prompt", "parse_proposal"]


def chat_prompt(messages: prompts.Messages, context: dict[str, Any]) -> Prompt:
    """Wrap chat messages into a :class:`Prompt` (the environment adds prefill/template)."""
    return Prompt(messages=tuple(dict(m) for m in messages), context=context)


def parse_proposal(response: str, settings: Settings) -> tuple[str, str]:
    """The ``(database, query)`` blocks of a proposal.

    Raises:
        FormatError: a block is missing, empty or too long.
    """
    blocks = answer_blocks(response)
    database = require_block(blocks, "database", settings.max_script_chars)
    query = require_block(blocks, "query", settings.max_query_chars)
    return database, query


class PairMode:
    """Proposer prompt and proposal validation for the (database, query) task types."""

    task_type = ""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def proposer_prompt(self, references: Sequence[Task], rng: np.random.Generator) -> Prompt:
        """Show up to ``max_shown_references`` references (in the order the core sampled them)."""
        del rng
        shown = [ref.payload for ref in references if "database" in ref.payload][: self.settings.max_shown_references]
        messages = prompts.proposer_messages(self.task_type, shown)
        context = {
            "task_type": self.task_type,
            "references": [[str(p["database"]), str(p["query"])] for p in shown],
        }
        return chat_prompt(messages, context)

    def validate(self, prompt: Prompt, response: str) -> Validation | Pending[Validation]:
        """Parse one proposal; return a rejection now or the sandbox work to finish it."""
        try:
            database, query = parse_proposal(response, self.settings)
        except FormatError as error:
            return Validation(task=None, reason=str(error), format_ok=False)
        if self.settings.reject_reference_copies:
            key = (normalise(database), normalise(query))
            for index, (ref_database, ref_query) in enumerate(prompt.context.get("references", ()), start=1):
                if (normalise(ref_database), normalise(ref_query)) == key:
                    return Validation(task=None, reason=f"copies reference example {index} of the prompt; propose a new task")

        def finish(runs: list[list[dict[str, Any]]]) -> Validation:
            gold = gold_from_runs(query, runs[0])
            if not isinstance(gold, Gold):
                return Validation(task=None, reason=gold)
            payload = {
                "database": database,
                "query": query,
                "result": format_rows(gold.rows),
                "ordered": gold.ordered,
                "schema": gold.schema,
            }
            return Validation(task=Task(self.task_type, payload))

        job = {"script": database, "query": query, "variants": True}
        return Pending(jobs=(job,), finish=finish, runs=2)
