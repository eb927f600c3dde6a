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

``prompt=native`` asks with CruxEval's own published chain-of-thought prompts instead
(``facebookresearch/cruxeval``, ``prompts.py``: ``make_cot_output_prompt`` for
CruxEval-O, ``make_cot_input_prompt`` for CruxEval-I; :func:`.prompts.cruxeval_prompt`),
as the one user turn of the model's chat template, and scores as CruxEval does: the
answer is read from ``[ANSWER] ... [/ANSWER]`` (:func:`.prompts.extract_cruxeval_answer`)
and CruxEval's ``assert <output> == <answer>`` is evaluated in the sandbox: the answer
(an output expression for -O, a call ``f(...)`` for -I) must parse as one Python
expression; it becomes the body of a function next to the dataset's program (its syntax
tree unparsed, never the raw text pasted, so ``0) or True or (0`` cannot escape), run
under the hardened policy, and the test compares its value with the dataset's output
with ``==`` (CruxEval's comparison, so ``1 == 1.0``) after checking it is a plain builtin
value (an object whose ``__eq__`` always says yes fails). An -O answer that calls ``f``
scores 0 (CruxEval refuses an answer that repeats ``f(input)``). The dataset's own answer
goes through the same path first; a problem where it does not score 1 is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from absolutezero.protocol import Agent, Environment, Prompt, Task, Verdict

import ast

from absolutezero_benchmarks import prompts as prompt_styles
from absolutezero_benchmarks import report
from absolutezero_benchmarks.codegen import PLAIN_VALUE_TEST
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
#: The native answer is the body of this function, defined after the dataset's program.
NATIVE_ENTRY = "_cruxeval_answer"
#: The native test: CruxEval's ``assert <output> == <answer>``, plain values only.
_NATIVE_TEST = PLAIN_VALUE_TEST + """
_value = candidate()
if not _plain(_value):
    raise AssertionError("the answer is not a plain builtin value")
if not (_value == (
{output}
)):
    raise AssertionError("wrong answer")
"""


def _calls_f(tree: ast.AST) -> bool:
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "f"
        for node in ast.walk(tree)
    )


def native_job(mode: str, problem: Problem, response: str) -> tuple[str, str] | Verdict:
    """The sandbox check ``(program, test)`` for a native CruxEval response, or the
    verdict when the response is already known to fail (no answer, not an expression,
    an -O answer calling ``f``, an -I answer that is not a call of ``f``)."""
    answer = prompt_styles.extract_cruxeval_answer(response, mode)
    if answer is None:
        return Verdict(0.0, format_ok=False, reason="no [ANSWER] ... [/ANSWER] answer in the response")
    try:
        expression = ast.parse(answer, mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return Verdict(0.0, format_ok=False, reason=f"the answer is not a Python expression: {answer[:200]!r}")
    if mode == "output" and _calls_f(expression):
        return Verdict(0.0, reason="the output answer calls f instead of giving its value")
    if mode == "input" and not (
        isinstance(expression, ast.Call) and isinstance(expression.func, ast.Name) and expression.func.id == "f"
    ):
        return Verdict(0.0, format_ok=False, reason=f"the input answer is not a call f(...): {answer[:200]!r}")
    try:
        body = ast.unparse(expression)
    except (ValueError, RecursionError):
        return Verdict(0.0, format_ok=False, reason="the answer cannot be written back as source")
    program = f"{problem.code}\n\n\ndef {NATIVE_ENTRY}():\n    return {body}\n"
    return program, _NATIVE_TEST.format(output=problem.output)


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
        prompt: ``azr`` (the code environment's solver prompts: the training task
            format itself) or ``native`` (CruxEval's published CoT prompts and scoring,
            see the module docstring).
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
        self.prompt_style = prompt_styles.check_style(prompt, self.name or "cruxeval")
        if env_options and environment is not None:
            raise ValueError("pass either env_options or an environment, not both")
        self.path = None if path is None else str(path)
        self.env_options = dict(env_options or {})
        self._environment = environment
        self._owns_environment = environment is None
        self._native: dict[str, Problem] = {}

    @property
    def mode(self) -> str:
        """CruxEval's name of the direction: ``output`` (-O) or ``input`` (-I)."""
        return _ANSWER_TAG[self.task_type]

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
        if self.prompt_style == "native":
            return self._prepare_native(problems)
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

    def _prepare_native(self, problems: Sequence[Problem]) -> tuple[list[PreparedTask], list[dict[str, str]]]:
        """Native tasks: every problem whose dataset answer passes CruxEval's own check
        (``assert f(input) == output`` through :func:`native_job`, in the sandbox). No
        canonicalisation: CruxEval's inputs may be expressions (``'a' * 20``)."""
        gold = [f"[ANSWER]\nassert f({problem.input}) == {problem.output}\n[/ANSWER]" for problem in problems]
        # f(input) == output, read as an -I answer (the call runs); for -O also the
        # output itself as the answer (it must be a plain value's expression)
        verdicts = self._native_score(problems, gold, "input")
        if self.mode == "output":
            again = self._native_score(problems, gold, "output")
            verdicts = [v if not v.correct else w for v, w in zip(verdicts, again)]
        prepared, skipped = [], []
        for problem, verdict in zip(problems, verdicts):
            if verdict.correct:
                self._native[problem.id] = problem
                task = Task(self.task_type, {"cruxeval_id": problem.id})
                prepared.append(PreparedTask(problem=problem, task=task))
            else:
                reason = f"the dataset's answer fails CruxEval's check in the sandbox ({verdict.reason})"
                skipped.append({"id": problem.id, "reason": reason})
        return prepared, skipped

    def solver_prompt(self, task: Task) -> Prompt:
        """The code environment's solver prompt (the training prompt, unchanged), or
        with ``prompt=native`` CruxEval's chain-of-thought prompt."""
        if self.prompt_style == "native":
            problem = self._native[task.payload["cruxeval_id"]]
            value = problem.input if self.mode == "output" else problem.output
            return prompt_styles.cruxeval_prompt(self.mode, problem.code, value)
        return self.environment.solver_prompt(task)

    def score(self, tasks: Sequence[Task], prompts: Sequence[Prompt], responses: Sequence[str]) -> list[Verdict]:
        """The code environment's sandboxed verdicts, element-wise (``native``:
        CruxEval's answer extraction and check, in the sandbox)."""
        if self.prompt_style == "native":
            return self._native_score([self._native[t.payload["cruxeval_id"]] for t in tasks], responses)
        return self.environment.verify(tasks, prompts, responses)

    def _native_score(
        self, problems: Sequence[Problem], responses: Sequence[str], mode: str | None = None
    ) -> list[Verdict]:
        """Native verdicts: :func:`native_job` checks (in ``mode``, default this
        benchmark's), run in one sandbox batch."""
        mode = mode or self.mode
        items = [native_job(mode, problem, response) for problem, response in zip(problems, responses)]
        jobs = [(item[0], item[1], NATIVE_ENTRY) for item in items if not isinstance(item, Verdict)]
        results = iter(self.environment.executor.check_many(jobs) if jobs else [])  # type: ignore[attr-defined]
        verdicts = []
        for item in items:
            if isinstance(item, Verdict):
                verdicts.append(item)
                continue
            result = next(results)
            if result.ok:
                verdicts.append(Verdict(1.0))
            else:
                verdicts.append(Verdict(0.0, reason=f"{result.status.value}: {result.reason}"[:500]))
        return verdicts

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
