"""CruxEval-O (output prediction = deduction) and CruxEval-I (input prediction = abduction).

The benchmarks add no prompt, parser or checker of their own: problems become code
environment tasks (:meth:`CodeEnvironment.build_tasks`), the solver sees
``env.solver_prompt(task)`` and answers are scored by ``env.verify`` in the sandbox, so
a CruxEval score measures exactly the skill self-play trains.

Gold answers are checked before any model runs. A row is *skipped* (and counted, with
its reason, in the report) when its output is not a plain literal the sandbox can
canonicalise, or when the dataset's own answer, fed through the same parser and sandbox
as a model answer, does not score 1: i.e. ``f(input)`` here does not give the dataset's
output (a timeout, a Python-version difference, an unsupported import), or the gold
output does not survive the answer format. Nothing is skipped silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from absolutezero.protocol import Agent, Environment, Prompt, Task, Verdict

from absolutezero_benchmarks import report
from absolutezero_benchmarks.dataset import (
    ENV_VAR,
    HUB_DATASET,
    HUB_PREFIX,
    DatasetError,
    Problem,
    default_path,
    load_problems,
    select,
)
from absolutezero_benchmarks.harness import BenchmarkResult, PreparedTask, run_benchmark

__all__ = ["CruxEvalBenchmark", "CruxEvalI", "CruxEvalO", "gold_response"]

ENVIRONMENT = "code"
_ANSWER_TAG = {"deduction": "output", "abduction": "input"}


def gold_response(task_type: str, answer: str, prefill: str = "<think>") -> str:
    """A solver response in the environment's answer format carrying ``answer``.

    Used to check a benchmark row's gold answer through the real parser and sandbox
    (and by tests to show that a correct answer scores 1).

    Returns:
        ``prefill`` + a short think block + ``<answer>`` with a fenced ``output`` block
        (deduction) or ``input`` block (abduction).
    """
    if task_type not in _ANSWER_TAG:
        raise ValueError(f"gold_response is for deduction or abduction, got {task_type!r}")
    tag = _ANSWER_TAG[task_type]
    return f"{prefill} gold answer from the dataset </think>\n<answer>\n```{tag}\n{answer}\n```\n</answer>"


class CruxEvalBenchmark:
    """One CruxEval direction over the code environment.

    Args:
        path: CruxEval JSONL file, ``hf://<name>[@split]``, or None for the default
            location (``$ABSOLUTEZERO_CRUXEVAL`` or ``../shared/data/cruxeval/
            cruxeval.jsonl`` next to the checkout; see :mod:`.dataset`).
        env_options: keyword options of the code environment (``workers``, ``timeout``,
            ...) used when no ``environment`` is given.
        environment: an existing code environment to use (not closed by :meth:`close`).
            None builds one through the registry on first use.
        prompt: only ``azr``: CruxEval scores the training task format itself (the code
            environment's solver prompts); ``native`` is refused with a clear error.
    """

    name: ClassVar[str] = ""
    task_type: ClassVar[str] = ""

    def __init__(
        self,
        path: str | Path | None = None,
        env_options: Mapping[str, Any] | None = None,
        environment: Environment | None = None,
        prompt: str = "azr",
    ) -> None:
        if prompt != "azr":
            raise ValueError(
                f"{self.name or 'cruxeval'}: only prompt=azr is supported (CruxEval is scored in the code "
                f"environment's own solver format), got prompt={prompt!r}"
            )
        if env_options and environment is not None:
            raise ValueError("pass either env_options or an environment, not both")
        self.path = None if path is None else str(path)
        self.env_options = dict(env_options or {})
        self._environment = environment
        self._owns_environment = environment is None

    @property
    def environment(self) -> Environment:
        """The code environment (built on first use)."""
        if self._environment is None:
            from absolutezero.registry import make_environment

            self._environment = make_environment(ENVIRONMENT, self.env_options)
        if not hasattr(self._environment, "build_tasks"):
            raise TypeError(
                f"{type(self._environment).__name__} has no build_tasks(task_type, triples); "
                "CruxEval needs the code environment"
            )
        return self._environment

    @classmethod
    def check_path(cls, path: str | None) -> None:
        """Fail fast (before a model is loaded) when the data file cannot be found.

        Hub paths (``hf://...``) are not checked here: only loading can tell.

        Raises:
            DatasetError: the given or default file does not exist (message says how to
                point at it).
        """
        if path is not None and str(path).startswith(HUB_PREFIX):
            return
        file = default_path() if path is None else Path(path).expanduser()
        if not file.is_file():
            where = "given" if path is not None else "default"
            raise DatasetError(
                f"the {where} CruxEval file {str(file)!r} does not exist; pass "
                f"path=/path/to/cruxeval.jsonl, set {ENV_VAR}, or use path={HUB_PREFIX}"
                f"{HUB_DATASET} (needs the 'datasets' package and network)"
            )

    def load(self, limit: int | None = None, seed: int | None = None) -> list[Problem]:
        """The problems to evaluate: all, the first ``limit``, or a seeded random subset.

        Raises:
            DatasetError: the data is missing or malformed.
        """
        return select(load_problems(self.path), limit, seed)

    def prepare(self, problems: Sequence[Problem]) -> tuple[list[PreparedTask], list[dict[str, str]]]:
        """Build tasks with canonical gold and check each gold answer scores 1.

        Returns:
            ``(prepared, skipped)``: the usable problems with their tasks, in order, and
            ``{"id": ..., "reason": ...}`` for every skipped problem.
        """
        env = self.environment
        built = env.build_tasks(self.task_type, [(p.code, p.input, p.output) for p in problems])  # type: ignore[attr-defined]
        skipped: list[dict[str, str]] = []
        candidates: list[tuple[Problem, Task]] = []
        for problem, item in zip(problems, built):
            if isinstance(item, Task):
                candidates.append((problem, item))
            else:
                skipped.append({"id": problem.id, "reason": f"gold cannot be canonicalised into a task: {item}"})
        # Check 1 (both directions): f(dataset input) in the sandbox gives the gold output.
        # Check 2 (deduction): the gold output, written as an answer, parses back to itself.
        checks: list[tuple[int, str, Task, str]] = []
        for index, (problem, task) in enumerate(candidates):
            as_abduction = Task("abduction", dict(task.payload))
            checks.append((index, "f(input) != output", as_abduction, problem.input))
            if self.task_type == "deduction":
                checks.append((index, "gold output does not parse back", task, str(task.payload["output"])))
        prompts = [env.solver_prompt(task) for _, _, task, _ in checks]
        responses = [
            gold_response(task.task_type, answer, prompt.prefill)
            for (_, _, task, answer), prompt in zip(checks, prompts)
        ]
        verdicts = env.verify([task for _, _, task, _ in checks], prompts, responses) if checks else []
        failed: dict[int, str] = {}
        for (index, what, _, _), verdict in zip(checks, verdicts):
            if not verdict.correct and index not in failed:
                failed[index] = f"{what} in the sandbox ({verdict.reason})"
        prepared = []
        for index, (problem, task) in enumerate(candidates):
            if index in failed:
                skipped.append({"id": problem.id, "reason": failed[index]})
            else:
                prepared.append(PreparedTask(problem=problem, task=task))
        order = {problem.id: i for i, problem in enumerate(problems)}
        skipped.sort(key=lambda item: order[item["id"]])
        return prepared, skipped

    def solver_prompt(self, task: Task) -> Prompt:
        """The code environment's solver prompt (the training prompt, unchanged)."""
        return self.environment.solver_prompt(task)

    def score(self, tasks: Sequence[Task], prompts: Sequence[Prompt], responses: Sequence[str]) -> list[Verdict]:
        """The code environment's sandboxed verdicts, element-wise."""
        return self.environment.verify(tasks, prompts, responses)

    def run(
        self,
        agent: Agent,
        limit: int | None = None,
        seed: int | None = None,
        k: int = 1,
        samples: int = 1,
        model: str = "",
        progress: bool = False,
    ) -> BenchmarkResult:
        """Load, prepare and evaluate: see :func:`harness.run_benchmark` for the figures."""
        problems = self.load(limit, seed)
        return run_benchmark(self, agent, problems, k=k, samples=samples, model=model, progress=progress)

    def close(self) -> None:
        """Stop the environment's executor if this benchmark built it. Safe to call twice."""
        if self._owns_environment and self._environment is not None:
            self._environment.close()
            self._environment = None

    def __enter__(self) -> "CruxEvalBenchmark":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    format_table = staticmethod(report.format_table)
    write_results = staticmethod(report.write_results)


class CruxEvalO(CruxEvalBenchmark):
    """CruxEval-O: given the program and the input, predict the output (deduction)."""

    name = "cruxeval-o"
    task_type = "deduction"


class CruxEvalI(CruxEvalBenchmark):
    """CruxEval-I: given the program and the output, find an input (abduction)."""

    name = "cruxeval-i"
    task_type = "abduction"
