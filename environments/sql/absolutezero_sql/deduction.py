"""Deduction: the solver sees the database and the query and writes the rows.

No sandbox is needed to score an answer: the answer is parsed by :mod:`.values` (never
run as SQL) and compared type-aware with the gold rows, as a list when the task is
ordered and as a multiset otherwise.
"""

from __future__ import annotations

from absolutezero.protocol import Prompt, Task, Verdict

from . import prompts
from .proposals import PairMode, chat_prompt
from .tasks import FormatError, answer_blocks, require_block
from .values import ResultFormatError, format_rows, parse_rows, same_result

__all__ = ["Deduction"]


class Deduction(PairMode):
    task_type = "deduction"

    def solver_prompt(self, task: Task) -> Prompt:
        payload = task.payload
        messages = prompts.deduction_solver_messages(str(payload["database"]), str(payload["query"]), bool(payload["ordered"]))
        return chat_prompt(messages, {"task_type": self.task_type})

    def verify(self, task: Task, response: str) -> Verdict:
        """1 iff the answer's rows equal the gold rows (type-aware; list or multiset)."""
        try:
            text = require_block(answer_blocks(response), "result", self.settings.max_answer_chars)
            rows = parse_rows(text, self.settings.max_result_rows)
        except (FormatError, ResultFormatError) as error:
            return Verdict(score=0.0, format_ok=False, reason=str(error))
        gold = parse_rows(str(task.payload["result"]))
        ordered = bool(task.payload["ordered"])
        if same_result(gold, rows, ordered):
            return Verdict(score=1.0)
        how = "in this order" if ordered else "as a multiset"
        return Verdict(score=0.0, reason=f"rows {format_rows(rows)[:100]!r} differ {how} from the expected {str(task.payload['result'])[:100]!r}")
