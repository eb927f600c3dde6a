"""CodeEnvironment: the reference Absolute Zero environment over Python programs.

Three task types over triplets (program ``p`` defining ``f``, input ``i``, output
``o = f(*i)``): ``deduction`` (given p, i, predict o), ``abduction`` (given p, o, find
an i with p(i) = o) and ``induction`` (given some (i, o) pairs and a message, write p).
Each task type lives in its own module (:mod:`.deduction`, :mod:`.abduction`,
:mod:`.induction`); this class dispatches to them and batches their executor work, so a
whole batch of proposals or answers costs one ``run_many`` (plus one
``canonicalize_many``) call.

No model-written text is executed or evaluated in this process: programs, inputs and
answers are only parsed statically here and go to the sandboxed executor.

References: deduction and abduction proposers see references from their own buffer (the
default of :meth:`Environment.reference_types`), so each mode's proposer is shown the
tasks that mode's learnability reward selected. The induction proposer needs an existing
program and draws from the deduction and abduction buffers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from absolutezero.protocol import Environment, Prompt, Task, Validation, Verdict
from absolutezero_code import prompts, seeds
from absolutezero_code.abduction import Abduction
from absolutezero_code.deduction import Deduction
from absolutezero_code.induction import Induction
from absolutezero_code.parsing import FormatError, check_arguments, check_literal, check_program
from absolutezero_code.executor.limits import DEFAULT_MEMORY_MB, DEFAULT_OUTPUT_LIMIT, DEFAULT_TIMEOUT
from absolutezero_code.executors import BUILTIN_EXECUTOR, RAY_EXECUTOR, executor_factory
from absolutezero_code.tasks import ExecutorLike, Settings, check_payload, settle, triplet_payload

__all__ = ["CodeEnvironment", "BUILTIN_EXECUTOR", "RAY_EXECUTOR"]

_NO_LIMIT = 10**9  # make_task inputs come from a benchmark, not a model: no length limits


def _allowed_imports() -> tuple[str, ...]:
    """Top-level modules the built-in executor's policy allows (for the proposer's rules).

    Falls back to the prompt default when the executor does not publish its allow-list.
    """
    try:
        from absolutezero_code.executor.policy import ALLOWED_MODULES
    except ImportError:
        return prompts.DEFAULT_ALLOWED_IMPORTS
    return tuple(sorted({str(module).split(".")[0] for module in ALLOWED_MODULES}))


class CodeEnvironment(Environment):
    """Python-program environment with deduction, abduction and induction tasks.

    Its options (``env_options.<name>`` in a run) are the keyword-only arguments below.

    Args:
        workers: sandbox worker processes; null = half the cores.
        timeout: seconds of CPU and wall time per program run.
        memory_mb: address-space limit per program run, in MB.
        output_limit: the executor's cap on a run's output repr, in characters.
        max_shown_references: at most this many reference tasks are shown to a proposer.
        num_induction_inputs: inputs an induction proposer is asked for (N).
        min_induction_inputs: distinct inputs that must run for an induction proposal to be valid (6 leaves >= 3 hidden pairs).
        max_program_chars: longest program; longer text is rejected with a reason, never truncated.
        max_input_chars: longest input.
        max_output_chars: longest gold output.
        max_message_chars: longest induction message.
        max_answer_chars: longest predicted output or input.
        prefill: how the assistant turn starts: "template" (forced answer template), "think", "answer", "none", or literal text.
        reject_reference_copies: reject a proposal whose program and input equal one of its prompt's references.
        executor: the executor factory: "builtin" (local sandbox), "ray", or one registered in the absolutezero_code.executors entry-point group.
        ray_address: with executor=ray, the cluster to join; null = $RAY_ADDRESS, else a new local cluster.

    ``prefill="template"`` forces the answer's fences and headers and lets the model fill
    in the program, values and message (:func:`prompts.answer_template`); it is what
    lets the embedded 0.5B model write valid proposals. ``"think"`` suits models that
    reason (:func:`prompts.prefill_for`). Executors are built lazily on first use, so
    listing or constructing the environment starts no processes; ``"ray"`` runs the same
    sandbox on a Ray cluster, one node-local pool per node, with identical results.
    """

    name = "code"
    task_types = ("deduction", "abduction", "induction")
    # CruxEval-O is the deduction mode on human-written programs, CruxEval-I abduction.
    benchmarks = ("cruxeval-o", "cruxeval-i")

    def __init__(
        self,
        *,
        workers: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        memory_mb: int = DEFAULT_MEMORY_MB,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
        max_shown_references: int = 3,
        num_induction_inputs: int = 10,
        min_induction_inputs: int = 6,
        max_program_chars: int = 2000,
        max_input_chars: int = 500,
        max_output_chars: int = 2000,
        max_message_chars: int = 500,
        max_answer_chars: int = 4000,
        prefill: str = "template",
        reject_reference_copies: bool = True,
        executor: str = BUILTIN_EXECUTOR,
        ray_address: str | None = None,
    ) -> None:
        if not isinstance(executor, str) or not executor:
            raise TypeError(f"executor must be the name of an executor factory, got {executor!r}")
        # The executor starts lazily; check its options now so a bad one fails here.
        from absolutezero_code.executor.pool import check_options

        check_options(workers, timeout, memory_mb, output_limit)
        if executor == RAY_EXECUTOR:
            from absolutezero_code.executor.ray_pool import check_ray_options

            check_ray_options(ray_address)  # Ray installed, address well-formed; nothing started
        elif ray_address is not None:
            raise ValueError(f"ray_address only applies with executor={RAY_EXECUTOR!r}, not executor={executor!r}")
        self.settings = Settings(
            max_program_chars=max_program_chars,
            max_input_chars=max_input_chars,
            max_output_chars=max_output_chars,
            max_message_chars=max_message_chars,
            max_answer_chars=max_answer_chars,
            num_induction_inputs=num_induction_inputs,
            min_induction_inputs=min_induction_inputs,
            max_shown_references=max_shown_references,
            reject_reference_copies=bool(reject_reference_copies),
            prefill=prefill,
            allowed_imports=_allowed_imports(),
        )
        self._executor_name = executor
        self._ray_address = ray_address
        self._executor_options = {
            "workers": workers,
            "timeout": float(timeout),
            "memory_mb": memory_mb,
            "output_limit": output_limit,
        }
        if executor != BUILTIN_EXECUTOR:
            self._factory()  # fail now, not mid-run, on an unknown executor name
        self._executor: ExecutorLike | None = None
        self._modes = {
            mode.task_type: mode
            for mode in (Deduction(self.settings), Abduction(self.settings), Induction(self.settings))
        }
        self._seeds: dict[str, list[Task]] = {}

    # -- executor ------------------------------------------------------------------

    def _factory(self) -> Callable[..., Any]:
        return executor_factory(self._executor_name, self._ray_address)

    @property
    def executor(self) -> ExecutorLike:
        """The executor, started on first use."""
        if self._executor is None:
            self._executor = self._factory()(**self._executor_options)
        return self._executor

    def close(self) -> None:
        """Stop the executor's worker processes. Safe to call twice."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.close()

    # -- protocol --------------------------------------------------------------------

    def _mode(self, task_type: str) -> Any:
        try:
            return self._modes[task_type]
        except KeyError:
            raise ValueError(
                f"unknown task type {task_type!r} for the code environment; use one of "
                f"{self.task_types}"
            ) from None

    def reference_types(self, task_type: str) -> tuple[str, ...]:
        """Induction draws programs from deduction and abduction; the others from themselves."""
        self._mode(task_type)
        return ("deduction", "abduction") if task_type == "induction" else (task_type,)

    def seed_tasks(self, task_type: str) -> list[Task]:
        """The identity seed for ``task_type``, validated by the executor (gold not hard-coded).

        Raises:
            RuntimeError: the seed failed validation (the executor is broken).
        """
        mode = self._mode(task_type)
        if task_type not in self._seeds:
            prompt = mode.proposer_prompt([], np.random.default_rng(0))
            response = seeds.seed_response(task_type, self.settings.num_induction_inputs)
            validation = self.validate([prompt], [response])[0]
            if validation.task is None:
                raise RuntimeError(
                    f"the identity seed for {task_type} failed validation: {validation.reason}"
                )
            self._seeds[task_type] = [validation.task]
        return list(self._seeds[task_type])

    def proposer_prompt(
        self, task_type: str, references: Sequence[Task], rng: np.random.Generator
    ) -> Prompt:
        """The proposer prompt for ``task_type`` showing some of ``references``."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        prompt = self._mode(task_type).proposer_prompt(list(references), rng)
        return self._with_prefill(prompt, "propose", task_type)

    def validate(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[Validation]:
        """Validate a batch of proposals with one batched executor call.

        Returns:
            One :class:`Validation` per response, in order: a task, or a rejection with
            ``reason`` and ``format_ok`` (False = unparseable).

        Raises:
            ValueError: different lengths, or a prompt not built by :meth:`proposer_prompt`.
        """
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        pending = []
        for prompt, response in zip(prompts, responses):
            task_type = prompt.context.get("task_type")
            if task_type is None:
                raise ValueError(
                    "prompt has no context['task_type']: build proposer prompts with "
                    "CodeEnvironment.proposer_prompt"
                )
            pending.append(self._mode(str(task_type)).validate(prompt, response))
        return settle(self.executor, pending, determinism_runs=2)

    def solver_prompt(self, task: Task) -> Prompt:
        """The solver prompt for ``task`` (its type decides what is shown and asked)."""
        prompt = self._mode(task.task_type).solver_prompt(task)
        return self._with_prefill(prompt, "solve", task.task_type)

    def _with_prefill(self, prompt: Prompt, role: str, task_type: str) -> Prompt:
        """``prompt`` with the prefill (and, for the template style, the answer template)
        that the ``prefill`` option gives."""
        if self.settings.prefill == prompts.TEMPLATE_STYLE:
            prefill, segments = prompts.answer_template(role, task_type, self.settings.num_induction_inputs)
            return dataclasses.replace(prompt, prefill=prefill, segments=segments)
        prefill = prompts.prefill_for(self.settings.prefill, role, task_type)
        return prompt if prefill == prompt.prefill else dataclasses.replace(prompt, prefill=prefill)

    def verify(
        self, tasks: Sequence[Task], prompts: Sequence[Prompt], responses: Sequence[str]
    ) -> list[Verdict]:
        """Score a batch of answers with one batched executor call.

        Returns:
            One :class:`Verdict` per response: score 1.0 (correct) or 0.0, ``format_ok``
            False when the answer could not be parsed, and the reason for a failure.
        """
        if not len(tasks) == len(prompts) == len(responses):
            raise ValueError(
                f"tasks ({len(tasks)}), prompts ({len(prompts)}) and responses "
                f"({len(responses)}) must have the same length"
            )
        pending = [self._mode(task.task_type).verify(task, r) for task, r in zip(tasks, responses)]
        return settle(self.executor, pending, determinism_runs=1)

    def deserialize_task(self, data: Mapping[str, Any]) -> Task:
        """A task from its JSON form, with its payload checked (clear error if malformed)."""
        task = super().deserialize_task(data)
        check_payload(task.task_type, task.payload)
        return task

    # -- benchmarks ------------------------------------------------------------------

    def build_tasks(
        self, task_type: str, triples: Sequence[tuple[str, str, str]]
    ) -> list[Task | str]:
        """Tasks from given ``(program, input, output)`` triples, e.g. CruxEval items.

        The output text is canonicalised in the sandbox (one batched call) so that
        :meth:`verify` compares like with like; programs and inputs are checked
        statically (no length limits: the items come from a benchmark, not a model).
        The program is not run. Use with :meth:`solver_prompt` and :meth:`verify` to
        evaluate deduction (CruxEval-O) and abduction (CruxEval-I) with exactly the
        training prompts, parsers and checks.

        Returns:
            One entry per triple: the :class:`Task`, or a ``str`` saying why that item
            could not be turned into a task (so a harness can skip it with a reason).

        Raises:
            ValueError: ``task_type`` is not deduction or abduction.
        """
        if task_type not in ("deduction", "abduction"):
            raise ValueError(
                f"build_tasks makes deduction or abduction tasks, not {task_type!r} (induction "
                "tasks need several validated pairs; propose them through validate)"
            )
        built: list[Task | str | None] = []
        literals: list[str] = []
        for program, input, output in triples:
            try:
                check_program(program, _NO_LIMIT)
                check_arguments(input, _NO_LIMIT, allow_empty=True)
                check_literal(output, _NO_LIMIT)
            except FormatError as error:
                built.append(str(error))
                continue
            built.append(None)
            literals.append(output)
        results = iter(self.executor.canonicalize_many(literals) if literals else [])
        tasks: list[Task | str] = []
        for (program, input, output), item in zip(triples, built):
            if item is not None:
                tasks.append(item)
                continue
            result = next(results)
            if not result.ok or result.output is None:
                tasks.append(f"output {output[:80]!r} is not a plain literal: {result.reason}")
            else:
                tasks.append(Task(task_type, triplet_payload(program.strip(), input.strip(), result.output)))
        return tasks

    def make_tasks(self, task_type: str, triples: Sequence[tuple[str, str, str]]) -> list[Task]:
        """Like :meth:`build_tasks`, but every item must succeed.

        Raises:
            ValueError: the first item that could not be built (its index and reason).
        """
        tasks = self.build_tasks(task_type, triples)
        for index, task in enumerate(tasks):
            if isinstance(task, str):
                raise ValueError(f"item {index}: {task}")
        return [task for task in tasks if isinstance(task, Task)]

    def make_task(self, task_type: str, program: str, input: str, output: str) -> Task:
        """One task from a ``(program, input, output)`` triple; see :meth:`build_tasks`."""
        return self.make_tasks(task_type, [(program, input, output)])[0]
