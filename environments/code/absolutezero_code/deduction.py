"""Deduction: the solver sees the program and the input and predicts the output.

The predicted output is model-written text. It is never ``eval``'d in this process (the
original ``eval``'d deduction answers in the trainer): it is checked to be a plain
literal statically, then parsed in the executor's sandbox by ``canonicalize_many``, and
the canonical repr is compared with the gold canonical repr. Equal canonical reprs mean
equal values with type awareness (``1`` != ``1.0`` != ``True``, tuple != list, dict and
set order ignored), and because the answer must be a literal it cannot smuggle in an
object whose ``__eq__`` always says yes.
"""

from __future__ import annotations

from collections.abc import Sequence

from absolutezero.protocol import Prompt, Task, Verdict
from absolutezero_code import prompts
from absolutezero_code.parsing import FormatError, parse_output_answer
from absolutezero_code.proposals import TripletMode, chat_prompt
from absolutezero_code.tasks import Pending, ResultLike, describe_failure

__all__ = ["Deduction"]


class Deduction(TripletMode):
    """Deduction task type: proposals are (program, input) triplets; answers are outputs."""

    task_type = "deduction"

    def solver_prompt(self, task: Task) -> Prompt:
        """Show the program and input; ask for the output in an ```output block."""
        payload = task.payload
        messages = prompts.deduction_solver_messages(str(payload["program"]), str(payload["input"]))
        return chat_prompt(messages, self.settings.prefill, {"task_type": self.task_type})

    def verify(self, task: Task, response: str) -> Verdict | Pending[Verdict]:
        """Score one answer: 1 iff its value equals the gold output (type-aware).

        Returns:
            A :class:`Verdict` now for an unparseable answer (``format_ok=False``), else
            the pending canonicalisation of the answer.
        """
        try:
            literal = parse_output_answer(response, self.settings.max_answer_chars)
        except FormatError as error:
            return Verdict(score=0.0, format_ok=False, reason=str(error))
        gold = str(task.payload["output"])

        def finish(runs: Sequence[ResultLike], literals: Sequence[ResultLike]) -> Verdict:
            del runs
            result = literals[0]
            if not result.ok or result.output is None:
                return Verdict(
                    score=0.0,
                    format_ok=False,
                    reason=f"answer is not a plain literal ({describe_failure(result)})",
                )
            if result.output == gold:
                return Verdict(score=1.0)
            return Verdict(score=0.0, reason=f"wrong output: got {result.output:.200}")

        return Pending(finish=finish, literals=(literal,))
