"""Abduction: the solver sees the query and its result and writes a database.

The answer is a database script like a proposer's; it goes through the same script
policy and limits in the sandbox (never pasted into other SQL), the task's query runs on
it once, and the answer is correct iff the rows equal the gold rows (list or multiset,
as the task says). Queries need not be injective, so any such database counts.
"""

from __future__ import annotations

from typing import Any

from absolutezero.protocol import Prompt, Task, Verdict

from . import prompts
from .gold import describe
from .proposals import PairMode, chat_prompt
from .tasks import FormatError, Pending, answer_blocks, require_block
from .values import decode_rows, format_rows, parse_rows, same_result

__all__ = ["Abduction"]


class Abduction(PairMode):
    task_type = "abduction"

    def solver_prompt(self, task: Task) -> Prompt:
        payload = task.payload
        messages = prompts.abduction_solver_messages(str(payload["query"]), str(payload["result"]))
        return chat_prompt(messages, {"task_type": self.task_type})

    def verify(self, task: Task, response: str) -> Verdict | Pending[Verdict]:
        try:
            database = require_block(answer_blocks(response), "database", self.settings.max_script_chars)
        except FormatError as error:
            return Verdict(score=0.0, format_ok=False, reason=str(error))
        gold = parse_rows(str(task.payload["result"]))
        ordered = bool(task.payload["ordered"])

        def finish(runs: list[list[dict[str, Any]]]) -> Verdict:
            result = runs[0][0]
            if not result.get("ok"):
                return Verdict(score=0.0, reason=describe(result))
            rows = decode_rows(result["rows"])
            if same_result(gold, rows, ordered):
                return Verdict(score=1.0)
            return Verdict(score=0.0, reason=f"the query returns {format_rows(rows)[:100]!r} on this database, expected {str(task.payload['result'])[:100]!r}")

        job = {"script": database, "query": str(task.payload["query"]), "variants": False}
        return Pending(jobs=(job,), finish=finish)
