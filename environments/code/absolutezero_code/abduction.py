"""Abduction: the solver sees the program and the output and finds an input.

Programs need not be injective, so the answer is correct iff running the program on the
predicted input in the sandbox gives the gold output (type-aware canonical equality);
any preimage is accepted, not only the proposer's input. The predicted input is passed to
the executor as literal argument text, never pasted into source code: the original
pasted it, so ``0) or True or (0`` turned ``f(...) == gold`` into ``True`` and scored 1.
Here such text fails the static argument-list check (and the executor parses inputs as
literals anyway).
"""

from __future__ import annotations

from collections.abc import Sequence

from absolutezero.protocol import Prompt, Task, Verdict
from absolutezero_code import prompts
from absolutezero_code.parsing import FormatError, parse_input_answer
from absolutezero_code.proposals import TripletMode, chat_prompt
from absolutezero_code.tasks import Pending, ResultLike, describe_failure

__all__ = ["Abduction"]


class Abduction(TripletMode):
    """Abduction task type: proposals are (program, input) triplets; answers are inputs."""

    task_type = "abduction"

    def solver_prompt(self, task: Task) -> Prompt:
        """Show the program and output; ask for an input in an ```input block."""
        payload = task.payload
        messages = prompts.abduction_solver_messages(str(payload["program"]), str(payload["output"]))
        return chat_prompt(messages, self.settings.prefill, {"task_type": self.task_type})

    def verify(self, task: Task, response: str) -> Verdict | Pending[Verdict]:
        """Score one answer: 1 iff ``f(answer)`` equals the gold output (type-aware).

        Returns:
            A :class:`Verdict` now for an unparseable answer (``format_ok=False``), else
            the pending sandboxed run of the program on the answer (one run: the program
            was already found deterministic when it was proposed).
        """
        try:
            arguments = parse_input_answer(response, self.settings.max_answer_chars)
        except FormatError as error:
            return Verdict(score=0.0, format_ok=False, reason=str(error))
        program = str(task.payload["program"])
        gold = str(task.payload["output"])

        def finish(runs: Sequence[ResultLike], literals: Sequence[ResultLike]) -> Verdict:
            del literals
            result = runs[0]
            if not result.ok or result.output is None:
                return Verdict(score=0.0, reason=f"f(answer) failed ({describe_failure(result)})")
            if result.output == gold:
                return Verdict(score=1.0)
            return Verdict(score=0.0, reason=f"f(answer) returns {result.output:.200}, not the output")

        return Pending(finish=finish, runs=((program, arguments),))
