"""Induction: the solver sees some input/output pairs and a message and writes the program.

Proposing: the proposer is given an existing program (drawn, with the caller's ``rng``,
from the references, which come from the deduction and abduction buffers) and writes
``num_induction_inputs`` inputs (default 10) plus a message. Validation keeps the first
``num_induction_inputs`` input blocks, drops malformed ones and duplicates (compared by
syntax tree, so ``'a'`` and ``"a"`` are one input while ``1`` and ``1.0`` are two), runs
the rest through the executor (two runs each, for determinism), and drops inputs whose
run fails. At least ``min_induction_inputs`` (default 6) distinct inputs must survive so
the task has at least three visible and three hidden pairs; otherwise it is rejected.
Gold outputs are the executor's canonical reprs, never truncated.

Split: the first ``ceil(k / 2)`` surviving pairs (in the proposer's order) are visible,
the remaining ``floor(k / 2)`` are hidden. The split is deterministic so a task's
identity (and buffer dedup) does not depend on a random draw.

Solving: the solver's program is run once on every hidden input in the sandbox; it is
correct iff every output equals the gold output (type-aware canonical equality). A
program returning an object with a custom ``__eq__`` cannot pass: the executor only
returns canonical reprs of plain values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from absolutezero.protocol import Prompt, Task, Validation, Verdict
from absolutezero_code import prompts
from absolutezero_code.parsing import (
    FormatError,
    argument_key,
    parse_induction_proposal,
    parse_program_answer,
)
from absolutezero_code.proposals import chat_prompt
from absolutezero_code.tasks import (
    Pending,
    ResultLike,
    Settings,
    describe_failure,
    induction_payload,
)

__all__ = ["Induction", "FALLBACK_PROGRAM"]

# Used when no reference program is available yet (the identity seed's program).
FALLBACK_PROGRAM = "def f(a):\n    return a"


class Induction:
    """Induction task type: proposals are inputs + message for a given program."""

    task_type = "induction"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def proposer_prompt(self, references: Sequence[Task], rng: np.random.Generator) -> Prompt:
        """Show one reference program (chosen with ``rng``) and ask for inputs + message.

        With no references the identity program is used. The chosen program travels in
        ``Prompt.context["program"]`` to :meth:`validate`.
        """
        candidates = [ref.payload for ref in references if "program" in ref.payload]
        if candidates:
            chosen = candidates[int(rng.integers(len(candidates)))]
            program = str(chosen["program"])
            examples = [(str(chosen["input"]), str(chosen["output"]))] if "output" in chosen else []
        else:
            program, examples = FALLBACK_PROGRAM, []
        messages = prompts.induction_proposer_messages(
            program, examples, self.settings.num_induction_inputs, self.settings.allowed_imports
        )
        context = {"task_type": self.task_type, "program": program}
        return chat_prompt(messages, self.settings.prefill, context)

    def validate(self, prompt: Prompt, response: str) -> Validation | Pending[Validation]:
        """Parse one proposal; return a rejection now or the executor work to finish it."""
        settings = self.settings
        program = prompt.context.get("program")
        if not isinstance(program, str):
            raise ValueError(
                "an induction prompt needs context['program'] (build it with "
                "CodeEnvironment.proposer_prompt('induction', ...))"
            )
        try:
            parsed, message = parse_induction_proposal(
                response,
                settings.num_induction_inputs,
                settings.max_input_chars,
                settings.max_message_chars,
            )
        except FormatError as error:
            return Validation(task=None, reason=str(error), format_ok=False)
        inputs: list[str] = []
        seen: set[str] = set()
        first_error = ""
        for item in parsed:
            if isinstance(item, FormatError):
                first_error = first_error or str(item)
                continue
            key = argument_key(item)
            if key not in seen:
                seen.add(key)
                inputs.append(item)
        need = settings.min_induction_inputs
        if len(inputs) < need:
            detail = f" (first problem: {first_error})" if first_error else ""
            return Validation(
                task=None,
                reason=f"only {len(inputs)} distinct well-formed inputs, need at least {need}{detail}",
                format_ok=False,
            )

        def finish(runs: Sequence[ResultLike], literals: Sequence[ResultLike]) -> Validation:
            del literals
            return self._task_from_runs(program, inputs, message, runs)

        return Pending(finish=finish, runs=tuple((program, item) for item in inputs))

    def _task_from_runs(
        self, program: str, inputs: Sequence[str], message: str, runs: Sequence[ResultLike]
    ) -> Validation:
        kept_inputs: list[str] = []
        kept_outputs: list[str] = []
        first_failure = ""
        for item, result in zip(inputs, runs):
            if result.ok and result.output is not None:
                if len(result.output) > self.settings.max_output_chars:
                    first_failure = first_failure or (
                        f"output for input {item[:40]!r} is {len(result.output)} characters "
                        f"long, more than the limit of {self.settings.max_output_chars}"
                    )
                    continue
                kept_inputs.append(item)
                kept_outputs.append(result.output)
            else:
                first_failure = first_failure or (
                    f"input {item[:40]!r}: {describe_failure(result)}"
                )
        need = self.settings.min_induction_inputs
        if len(kept_inputs) < need:
            return Validation(
                task=None,
                reason=f"only {len(kept_inputs)} inputs ran successfully, need at least {need} "
                f"(first failure: {first_failure})",
            )
        num_visible = (len(kept_inputs) + 1) // 2
        payload = induction_payload(program, kept_inputs, kept_outputs, message, num_visible)
        return Validation(task=Task(self.task_type, payload))

    def solver_prompt(self, task: Task) -> Prompt:
        """Show the visible pairs and the message; ask for a ```python program."""
        payload = task.payload
        pairs = [(str(payload["inputs"][i]), str(payload["outputs"][i])) for i in payload["visible"]]
        messages = prompts.induction_solver_messages(pairs, str(payload["message"]))
        return chat_prompt(messages, self.settings.prefill, {"task_type": self.task_type})

    def verify(self, task: Task, response: str) -> Verdict | Pending[Verdict]:
        """Score one answer: 1 iff the solver's program reproduces every hidden pair.

        Returns:
            A :class:`Verdict` now for an unparseable answer (``format_ok=False``), else
            the pending runs of the solver's program on the hidden inputs (one run each).
        """
        try:
            program = parse_program_answer(response, self.settings.max_program_chars)
        except FormatError as error:
            return Verdict(score=0.0, format_ok=False, reason=str(error))
        payload = task.payload
        hidden = [int(i) for i in payload["hidden"]]
        jobs = tuple((program, str(payload["inputs"][i])) for i in hidden)
        gold = [str(payload["outputs"][i]) for i in hidden]

        def finish(runs: Sequence[ResultLike], literals: Sequence[ResultLike]) -> Verdict:
            del literals
            for (_, item), result, expected in zip(jobs, runs, gold):
                if not result.ok or result.output is None:
                    return Verdict(
                        score=0.0, reason=f"f({item:.60}) failed ({describe_failure(result)})"
                    )
                if result.output != expected:
                    return Verdict(
                        score=0.0,
                        reason=f"f({item:.60}) returns {result.output:.100}, expected {expected:.100}",
                    )
            return Verdict(score=1.0)

        return Pending(finish=finish, runs=jobs)
