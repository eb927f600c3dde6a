"""Shared machinery of the code-generation benchmarks (HumanEval, HumanEval+, MBPP+,
LiveCodeBench): prompts, program assembly and sandboxed scoring.

A completion is scored by running its program and each of the problem's tests with
:meth:`Executor.check_many` (one fresh sandboxed process per test; pass iff nothing
raises within the limits). Neither the completion nor the benchmark's test code ever
runs in this process. The completion always passes the sandbox's hardened policy. The
test passes it too, unless the benchmark ships test code of its own that needs more
(:attr:`CodeGenBenchmark.trusted_tests`, HumanEval's tests import ``random``): that
test is trusted data and runs with the executor's *trusted* policy (a wider, explicit
module allow-list and builtins of its own that the candidate cannot reach, see
``absolutezero_code.executor.trusted``). A problem's reference solution, when the data
has one, goes through the same tests first, itself as trusted code (it is benchmark
data: HumanEval/160 ``eval``s, HumanEval/162 imports ``hashlib``); a problem whose
reference still fails here (a time limit) is *skipped* with its reason, never silently
dropped and never scored against the model.

Generated test code uses builtins only (no module functions a program could have
reassigned) and compares values with exact types (a returned object with a custom
``__eq__`` is not a plain value and fails).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from absolutezero.protocol import Prompt, Task, Verdict

from absolutezero_benchmarks import prompts
from absolutezero_benchmarks.base import SuiteBenchmark
from absolutezero_benchmarks.harness import PreparedTask

__all__ = ["PLAIN_VALUE_TEST", "CodeGenBenchmark", "CodeProblem", "CodeTest", "defines", "sanitize", "to_source"]

TASK_TYPE = "codegen"

#: Test-code helper: ``_plain(value)`` is True for plain values only (exact builtin types,
#: recursively), so comparing them with ``==`` runs no model-written ``__eq__``.
PLAIN_VALUE_TEST = '''
def _plain(value, depth=0):
    kind = type(value)
    if kind in (bool, int, float, complex, str, bytes, type(None)):
        return True
    if depth > 200:
        return False
    if kind in (list, tuple, set):
        return all(_plain(item, depth + 1) for item in value)
    if kind is dict:
        return all(_plain(key, depth + 1) and _plain(item, depth + 1) for key, item in value.items())
    return False
'''


@dataclass(frozen=True)
class CodeTest:
    """One sandboxed check: test code run after the program (and the stdin it reads)."""

    code: str
    stdin: str | None = None


@dataclass(frozen=True)
class CodeProblem:
    """A code-generation problem, ready to score.

    Attributes:
        id: the dataset's problem id.
        statement: what the model is asked, with the benchmark's native instruction.
        entry_points: names the test calls as ``candidate``, in order of preference (the
            first the program defines at top level is used); empty for stdin programs.
        tests: the checks a program must all pass.
        preamble: imports and helpers of the prompt, put before the model's program
            (so ``List`` in a signature or a helper like ``poly`` is defined).
        stub: the prompt's code a completion may merely continue (HumanEval): used when
            the program does not define the entry point itself.
        gold: a reference solution checked before scoring (None: not checked).
        task_prompt: the dataset's raw prompt, for EvalPlus's native chat prompt
            (:func:`.prompts.evalplus_prompt`; empty: ``statement`` in both styles).
    """

    id: str
    statement: str
    entry_points: tuple[str, ...]
    tests: tuple[CodeTest, ...]
    preamble: str = ""
    stub: str = ""
    gold: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    task_prompt: str = ""


def to_source(value: object) -> str:
    """Python source that evaluates to ``value`` (a plain value from trusted data).

    Unlike ``repr``, non-finite floats become ``float('inf')`` / ``float('nan')``.

    Raises:
        TypeError: a value that is not plain data.
    """
    if value is None or isinstance(value, (bool, int, str, bytes)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"float({repr(value)!r})"
    if isinstance(value, complex):
        return f"complex({to_source(value.real)}, {to_source(value.imag)})"
    if isinstance(value, list):
        return "[" + ", ".join(to_source(item) for item in value) + "]"
    if isinstance(value, tuple):
        return "(" + "".join(to_source(item) + ", " for item in value) + ")"
    if isinstance(value, (set, frozenset)):
        return ("{" + ", ".join(to_source(item) for item in value) + "}") if value else "set()"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{to_source(k)}: {to_source(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"not plain data: {type(value).__name__}")


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def defines(code: str, name: str) -> bool:
    """Whether ``code`` (parsed, never run) defines ``name`` at top level."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return True
    return False


_KEPT_STATEMENTS = (
    ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign,
)


def sanitize(code: str) -> str:
    """The definitions of a program, as EvalPlus's ``sanitize`` keeps them (simplified):
    top-level imports, functions, classes and assignments; example calls, prints,
    asserts and ``if __name__ == "__main__":`` blocks a model adds after its solution
    are dropped. Code that does not parse is returned unchanged (it fails as is)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return code
    lines = code.splitlines()
    kept = []
    for node in tree.body:
        if isinstance(node, _KEPT_STATEMENTS):
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            kept.append("\n".join(lines[first - 1 : node.end_lineno]))
    return "\n\n".join(kept) if kept else code


class CodeGenBenchmark(SuiteBenchmark):
    """Base class of the code-generation benchmarks; subclasses say how rows become
    :class:`CodeProblem` (:meth:`parse`) and may compute tests in :meth:`specs`.

    Args:
        path: data file, ``hf://...``, or None (see :mod:`.sources`).
        env_options: ``workers``, ``timeout`` (seconds per test job), ``memory_mb``
            of the sandbox (plus ``start_date``/``end_date`` for LiveCodeBench).
        prompt: ``azr`` or ``native`` (:mod:`.prompts`).
        executor: an existing :class:`Executor` to use (not closed by :meth:`close`).
    """

    #: Seconds a test job may run unless ``env_options.timeout`` says otherwise.
    default_timeout: ClassVar[float] = 10.0
    #: The tests are the benchmark's own code (not generated here from data) and run
    #: with the executor's trusted policy (``check_many(trusted="test")``).
    trusted_tests: ClassVar[bool] = False

    def __init__(
        self,
        path: str | Path | None = None,
        env_options: Mapping[str, Any] | None = None,
        prompt: str = "azr",
        executor: Any = None,
    ) -> None:
        super().__init__(path, env_options, prompt)
        self.timeout = float(self.options.get("timeout", self.default_timeout))
        self._executor = executor
        self._owns_executor = executor is None
        self._problems: dict[str, CodeProblem] = {}

    @property
    def executor(self) -> Any:
        """The sandboxed executor (started on first use)."""
        if self._executor is None:
            from absolutezero_code.executor import Executor

            self._executor = Executor(
                workers=self.options.get("workers"),
                timeout=self.timeout,
                memory_mb=int(self.options.get("memory_mb", 1024)),
                output_limit=16_000_000,  # reference outputs of EvalPlus inputs can be long
            )
        return self._executor

    def specs(self, problems: Sequence[Any]) -> tuple[list[CodeProblem], list[dict[str, str]]]:
        """Problems ready to score, and the skipped ones (subclasses may compute tests
        here, e.g. reference outputs in the sandbox). Default: problems as they are."""
        return list(problems), []

    def prepare(self, problems: Sequence[Any]) -> tuple[list[PreparedTask], list[dict[str, str]]]:
        """Tasks for the harness; a problem whose reference solution fails its own tests
        in the sandbox is skipped with the reason."""
        ready, skipped = self.specs(problems)
        with_gold = [p for p in ready if p.gold is not None]
        gold = [(p.gold, p.entry_points[0] if p.entry_points else None) for p in with_gold]
        verdicts = self._check(gold, with_gold, reference=True)  # type: ignore[arg-type]
        failed = {p.id: v.reason for p, v in zip(with_gold, verdicts) if not v.correct}
        prepared = []
        for problem in ready:
            if problem.id in failed:
                reason = f"the reference solution fails in the sandbox: {failed[problem.id]}"
                skipped.append({"id": problem.id, "reason": reason})
            else:
                prepared.append(PreparedTask(problem=problem, task=Task(TASK_TYPE, {"id": problem.id})))
        self._problems = {p.id: p for p in ready}
        order = {p.id: i for i, p in enumerate(problems)}
        skipped.sort(key=lambda item: order.get(item["id"], len(order)))
        return prepared, skipped

    def solver_prompt(self, task: Task) -> Prompt:
        """The prompt for a prepared task in this benchmark's prompt style (``native``:
        EvalPlus's chat prompt when the problem has a raw ``task_prompt``)."""
        problem = self._problems[task.payload["id"]]
        if self.prompt_style == "native" and problem.task_prompt:
            return prompts.evalplus_prompt(problem.task_prompt)
        return prompts.code_prompt(self.prompt_style, problem.statement)

    def assemble(self, problem: CodeProblem, code: str) -> tuple[str, str | None]:
        """The program to run for ``code`` and the entry point the tests call.

        The prompt's preamble comes first; a completion that does not define any entry
        point continues the prompt's stub (the HumanEval completion style).
        """
        entry = next((name for name in problem.entry_points if defines(code, name)), None)
        if entry is None and problem.entry_points and problem.stub:
            # A fenced block comes back stripped: a body lost its first indentation.
            for body in ("    " + code, code):
                if _parses(problem.stub + body):
                    return problem.stub + body, problem.entry_points[0]
            return problem.stub + code, problem.entry_points[0]
        program = f"{problem.preamble}\n\n{code}" if problem.preamble else code
        return program, entry or (problem.entry_points[0] if problem.entry_points else None)

    def _check(
        self,
        programs: Sequence[tuple[str, str | None] | None],
        problems: Sequence[CodeProblem],
        reference: bool = False,
    ) -> list[Verdict]:
        """Verdicts of ``(program, entry point)`` pairs (None: no code found) on their
        problems' tests, all in one batch of sandbox jobs. ``reference``: the programs
        are the benchmark's reference solutions (trusted code; function jobs only)."""
        jobs: list[tuple[str, str, str | None, str | None]] = []
        spans: list[tuple[int, int]] = []
        for item, problem in zip(programs, problems):
            start = len(jobs)
            if item is not None:
                jobs.extend((item[0], test.code, item[1], test.stdin) for test in problem.tests)
            spans.append((start, len(jobs)))
        results = self.executor.check_many(jobs, timeout=self.timeout, trusted=self.trust(reference)) if jobs else []
        verdicts = []
        for item, (start, end) in zip(programs, spans):
            if item is None:
                verdicts.append(Verdict(0.0, format_ok=False, reason="no ```python block in the response"))
                continue
            failures = [(i, r) for i, r in enumerate(results[start:end]) if not r.ok]
            if not failures:
                verdicts.append(Verdict(1.0))
                continue
            index, result = failures[0]
            where = f"test {index + 1} of {end - start}: " if end - start > 1 else ""
            verdicts.append(Verdict(0.0, reason=f"{where}{result.status.value}: {result.reason}"[:500]))
        return verdicts

    def trust(self, reference: bool = False) -> str | None:
        """The executor's ``trusted=`` level for this benchmark's checks."""
        if reference:
            return "reference"
        return "test" if self.trusted_tests else None

    def score(self, tasks: Sequence[Task], prompts_: Sequence[Prompt], responses: Sequence[str]) -> list[Verdict]:
        """Sandboxed verdicts: 1.0 when the response's program passes every test."""
        problems = [self._problems[task.payload["id"]] for task in tasks]
        codes = [prompts.extract_code(response) for response in responses]
        if self.prompt_style == "native":  # EvalPlus sanitises chat answers before its tests
            codes = [
                sanitize(code) if code is not None and problem.task_prompt else code
                for code, problem in zip(codes, problems)
            ]
        return self._check([None if c is None else self.assemble(p, c) for c, p in zip(codes, problems)], problems)

    def close(self) -> None:
        """Stop the executor if this benchmark started it. Safe to call twice."""
        if self._owns_executor and self._executor is not None:
            self._executor.close()
            self._executor = None
