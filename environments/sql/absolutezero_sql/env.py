"""SqlEnvironment: Absolute Zero over read-only SQLite queries on small literal databases.

A task is a triplet (query q, database d, result r = q(d)). Three task types, one module
each: ``deduction`` (given d and q, predict r; :mod:`.deduction`), ``abduction`` (given q
and r, write a d' on which q returns r; :mod:`.abduction`) and ``induction`` (given some
(d, r) pairs and a message, write q; :mod:`.induction`). This class dispatches to them
and batches their sandbox work: one batch of proposals or answers is one
``SandboxPool.run_many`` call.

No model-written text runs in this process: databases and queries go to sandbox
worker processes (:mod:`.pool`, :mod:`.worker`), where SQLite's authorizer enforces the
policies of :mod:`.policy`; results come back as data and are compared in Python.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from absolutezero.protocol import Environment, Prompt, Task, Validation, Verdict

from . import prompts, seeds
from .abduction import Abduction
from .deduction import Deduction
from .induction import Induction
from .policy import Limits
from .pool import SandboxPool
from .sqltext import single_table
from .tasks import Settings, check_payload, settle

__all__ = ["SqlEnvironment"]


def _positive(name: str, value: Any, kind: type = int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int) or value <= 0:
        raise ValueError(f"{name} must be a positive {kind.__name__}, got {value!r}")


class SqlEnvironment(Environment):
    """SQLite environment with deduction, abduction and induction tasks.

    All options are keyword-only (they come from ``env_options`` of the run config).

    Args:
        workers: sandbox worker processes (each runs one job at a time, in a fresh fork).
        timeout: wall-clock seconds one job (build the database, run the query) may take.
        memory_mb: address-space limit of a job's process (SQLite's heap gets half).
        max_vm_steps: SQLite virtual-machine steps one job may run (progress handler).
        max_tables: most tables a database may create.
        max_rows: most rows a database may hold, over all its tables.
        max_result_rows: most rows a query may return; more is a rejection, never a cut.
        max_result_chars: longest result, written as SQL literals one row per line.
        max_value_bytes: longest TEXT or BLOB any value may grow to (SQLITE_LIMIT_LENGTH).
        max_script_chars: longest database script (proposals and abduction answers).
        max_query_chars: longest query (proposals and induction answers).
        max_message_chars: longest induction message.
        max_answer_chars: longest deduction answer (the result rows).
        num_induction_databases: databases an induction proposer is asked for.
        min_induction_databases: databases that must run for an induction proposal to be valid.
        max_shown_references: at most this many reference tasks are shown to a proposer.
        reject_reference_copies: reject a proposal equal to one of its prompt's references.
        prefill: "template" (forced fences and statement openers), "think", "answer", "none" or literal text.
    """

    name = "sql"
    task_types = ("deduction", "abduction", "induction")

    def __init__(
        self,
        *,
        workers: int = 2,
        timeout: float = 2.0,
        memory_mb: int = 256,
        max_vm_steps: int = 20_000_000,
        max_tables: int = 5,
        max_rows: int = 30,
        max_result_rows: int = 50,
        max_result_chars: int = 2000,
        max_value_bytes: int = 100_000,
        max_script_chars: int = 1500,
        max_query_chars: int = 600,
        max_message_chars: int = 300,
        max_answer_chars: int = 2000,
        num_induction_databases: int = 5,
        min_induction_databases: int = 3,
        max_shown_references: int = 2,
        reject_reference_copies: bool = True,
        prefill: str = "template",
    ) -> None:
        _positive("timeout", timeout, float)
        for name, value in (
            ("workers", workers), ("memory_mb", memory_mb), ("max_vm_steps", max_vm_steps),
            ("max_tables", max_tables), ("max_rows", max_rows), ("max_result_rows", max_result_rows),
            ("max_result_chars", max_result_chars), ("max_value_bytes", max_value_bytes),
            ("max_script_chars", max_script_chars), ("max_query_chars", max_query_chars),
            ("max_message_chars", max_message_chars), ("max_answer_chars", max_answer_chars),
            ("num_induction_databases", num_induction_databases),
            ("min_induction_databases", min_induction_databases), ("max_shown_references", max_shown_references),
        ):
            _positive(name, value)
        if not 2 <= min_induction_databases <= num_induction_databases:
            raise ValueError(
                f"need 2 <= min_induction_databases ({min_induction_databases}) <= "
                f"num_induction_databases ({num_induction_databases})"
            )
        if not isinstance(prefill, str):
            raise TypeError(f"prefill must be a str, got {type(prefill).__name__}")
        self.limits = Limits(
            timeout=float(timeout), memory_mb=memory_mb, max_vm_steps=max_vm_steps, max_tables=max_tables,
            max_rows=max_rows, max_result_rows=max_result_rows, max_result_chars=max_result_chars,
            max_value_bytes=max_value_bytes,
        )
        self.settings = Settings(
            max_script_chars=max_script_chars, max_query_chars=max_query_chars,
            max_message_chars=max_message_chars, max_answer_chars=max_answer_chars,
            max_result_rows=max_result_rows, num_induction_databases=num_induction_databases,
            min_induction_databases=min_induction_databases, max_shown_references=max_shown_references,
            reject_reference_copies=bool(reject_reference_copies), prefill=prefill,
        )
        self._workers = workers
        self._pool: SandboxPool | None = None
        self._modes = {m.task_type: m for m in (Deduction(self.settings), Abduction(self.settings), Induction(self.settings))}
        self._seeds: dict[str, list[Task]] = {}

    @property
    def pool(self) -> SandboxPool:
        """The sandbox pool, started on first use (listing the environment starts nothing)."""
        if self._pool is None:
            self._pool = SandboxPool(self._workers, self.limits)
        return self._pool

    def close(self) -> None:
        """Stop the sandbox workers. Safe to call twice."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def _mode(self, task_type: str) -> Any:
        try:
            return self._modes[task_type]
        except KeyError:
            raise ValueError(f"unknown task type {task_type!r} for the sql environment; use one of {self.task_types}") from None

    def reference_types(self, task_type: str) -> tuple[str, ...]:
        """Induction draws queries (with their tables) from deduction and abduction."""
        self._mode(task_type)
        return ("deduction", "abduction") if task_type == "induction" else (task_type,)

    def seed_tasks(self, task_type: str) -> list[Task]:
        """The seeds of :mod:`.seeds`, validated in the sandbox (gold never hard-coded).

        Raises:
            RuntimeError: a seed failed validation (the sandbox is broken).
        """
        mode = self._mode(task_type)
        if task_type not in self._seeds:
            prompt = mode.proposer_prompt([], np.random.default_rng(0))
            if task_type == "induction":
                responses = [seeds.induction_response(self.settings.num_induction_databases)]
            else:
                responses = [seeds.pair_response(d, q) for d, q in seeds.PAIRS]
            tasks = []
            for validation in self.validate([prompt] * len(responses), responses):
                if validation.task is None:
                    raise RuntimeError(f"a {task_type} seed failed validation: {validation.reason}")
                tasks.append(validation.task)
            self._seeds[task_type] = tasks
        return list(self._seeds[task_type])

    def proposer_prompt(self, task_type: str, references: Sequence[Task], rng: np.random.Generator) -> Prompt:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return self._styled(self._mode(task_type).proposer_prompt(list(references), rng), "propose", task_type)

    def validate(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[Validation]:
        """Validate a batch of proposals with one sandbox call (two runs per job)."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        pending = []
        for prompt, response in zip(prompts, responses):
            task_type = prompt.context.get("task_type")
            if task_type is None:
                raise ValueError("prompt has no context['task_type']: build proposer prompts with SqlEnvironment.proposer_prompt")
            if not isinstance(response, str):
                pending.append(Validation(task=None, reason="the response is not text", format_ok=False))
                continue
            pending.append(self._mode(str(task_type)).validate(prompt, response))
        return settle(self.pool, pending)

    def solver_prompt(self, task: Task) -> Prompt:
        return self._styled(self._mode(task.task_type).solver_prompt(task), "solve", task.task_type)

    def verify(self, tasks: Sequence[Task], prompts: Sequence[Prompt], responses: Sequence[str]) -> list[Verdict]:
        """Score a batch of answers (one sandbox call for the abduction/induction runs)."""
        if not len(tasks) == len(prompts) == len(responses):
            raise ValueError(f"tasks ({len(tasks)}), prompts ({len(prompts)}) and responses ({len(responses)}) must have the same length")
        pending = [
            self._mode(task.task_type).verify(task, response) if isinstance(response, str)
            else Verdict(score=0.0, format_ok=False, reason="the answer is not text")
            for task, response in zip(tasks, responses)
        ]
        return settle(self.pool, pending)

    def deserialize_task(self, data: Mapping[str, Any]) -> Task:
        task = super().deserialize_task(data)
        check_payload(task.task_type, task.payload)
        return task

    def _styled(self, prompt: Prompt, role: str, task_type: str) -> Prompt:
        if self.settings.prefill == prompts.TEMPLATE_STYLE:
            table = single_table(prompt.context.get("schema", ())) if role == "propose" else None
            prefill, segments = prompts.answer_template(role, task_type, self.settings.num_induction_databases, table)
            return dataclasses.replace(prompt, prefill=prefill, segments=segments)
        return dataclasses.replace(prompt, prefill=prompts.prefill_for(self.settings.prefill, role, task_type))
