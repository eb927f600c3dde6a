"""Proposing (program, input) triplets: shared by deduction and abduction.

Both modes ask the proposer for the same thing, a program defining ``f`` and one input;
they differ only in what the solver is later shown. A proposal is valid when it parses
(see :mod:`absolutezero_code.parsing`), is not a copy of one of the prompt's own
references, and runs in the executor within its limits, deterministically (two runs in
separate processes with the same result) and with a plain output. The gold output is the
executor's canonical repr, kept whole: an output longer than ``max_output_chars`` rejects
the proposal instead of being truncated (the original truncated gold outputs to 400
characters, making such tasks silently unsolvable).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from absolutezero.protocol import Prompt, Task, Validation
from absolutezero_code import prompts
from absolutezero_code.parsing import FormatError, argument_key, parse_proposal, program_key
from absolutezero_code.tasks import Pending, ResultLike, Settings, describe_failure, triplet_payload

__all__ = ["TripletMode", "chat_prompt"]


def chat_prompt(messages: prompts.Messages, prefill: str, context: dict) -> Prompt:
    """Wrap chat messages into a :class:`Prompt` (messages copied into plain dicts)."""
    return Prompt(messages=tuple(dict(m) for m in messages), prefill=prefill, context=context)


class TripletMode:
    """Proposer prompt and proposal validation for the triplet task types.

    Subclasses set ``task_type`` and add the solver side (``solver_prompt``, ``verify``).
    """

    task_type: str = ""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def proposer_prompt(self, references: Sequence[Task], rng: np.random.Generator) -> Prompt:
        """A prompt showing up to ``max_shown_references`` references as examples.

        ``rng`` is unused: the references arrive already sampled by the core, and are
        shown in the order given. The prompt context remembers the shown references so
        :meth:`validate` can reject verbatim copies.
        """
        del rng
        shown = [ref.payload for ref in references[: self.settings.max_shown_references]]
        messages = prompts.proposer_messages(self.task_type, shown, self.settings.allowed_imports)
        context = {
            "task_type": self.task_type,
            "references": [[str(p["program"]), str(p["input"])] for p in shown],
        }
        return chat_prompt(messages, self.settings.prefill, context)

    def validate(self, prompt: Prompt, response: str) -> Validation | Pending[Validation]:
        """Parse one proposal; return a rejection now or the executor work to finish it."""
        settings = self.settings
        try:
            program, input = parse_proposal(
                response, settings.max_program_chars, settings.max_input_chars
            )
        except FormatError as error:
            return Validation(task=None, reason=str(error), format_ok=False)
        if settings.reject_reference_copies:
            copied = _copied_reference(program, input, prompt.context.get("references", ()))
            if copied is not None:
                return Validation(
                    task=None,
                    reason=f"copies reference example {copied} of the prompt; propose a new task",
                )

        def finish(runs: Sequence[ResultLike], literals: Sequence[ResultLike]) -> Validation:
            del literals
            return self.task_from_run(program, input, runs[0])

        return Pending(finish=finish, runs=((program, input),))

    def task_from_run(self, program: str, input: str, result: ResultLike) -> Validation:
        """The validated task for a finished run of ``f(input)``, or the rejection."""
        if not result.ok or result.output is None:
            return Validation(task=None, reason=f"program run failed ({describe_failure(result)})")
        output = result.output
        if len(output) > self.settings.max_output_chars:
            return Validation(
                task=None,
                reason=f"output is {len(output)} characters long, more than the limit of "
                f"{self.settings.max_output_chars}",
            )
        return Validation(task=Task(self.task_type, triplet_payload(program, input, output)))


def _copied_reference(program: str, input: str, references: Sequence[Sequence[str]]) -> int | None:
    """1-based index of a reference with the same program and input (up to formatting)."""
    keys = (program_key(program), argument_key(input))
    for index, (ref_program, ref_input) in enumerate(references, start=1):
        try:
            if (program_key(ref_program), argument_key(ref_input)) == keys:
                return index
        except (SyntaxError, ValueError):  # a malformed reference cannot be copied
            continue
    return None
