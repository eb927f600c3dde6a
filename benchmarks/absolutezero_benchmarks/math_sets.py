"""Math benchmarks (AIME24, AIME25, AMC23, MATH500, Minerva, OlympiadBench, GSM8K):
the shared base; each set is a thin module of its own (``aime24.py``, ...).

Data: JSONL with a problem and an answer per row (the key names vary by release and
are all accepted: ``problem``/``question``, ``answer``/``final_answer``/``solution``).
A response's answer is the last ``<answer>`` block (its last ``\\boxed{}`` if it has
one) or else the last ``\\boxed{}`` (:func:`.prompts.extract_math_answer`), checked
against the gold answer with ``math-verify`` in a separate hardened process
(:mod:`.mathcheck`; never in this one). Gold answers go through the same checker first:
a row whose gold answer does not verify against itself is skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from absolutezero.protocol import Prompt, Task, Verdict

from absolutezero_benchmarks import prompts
from absolutezero_benchmarks.base import SuiteBenchmark
from absolutezero_benchmarks.dataset import DatasetError
from absolutezero_benchmarks.harness import PreparedTask
from absolutezero_benchmarks.mathcheck import ITEM_TIMEOUT, MathChecker, MathVerifyUnavailable, available
from absolutezero_benchmarks.sources import Row, text_field, unique_ids

__all__ = ["MathBenchmark", "MathProblem"]

TASK_TYPE = "math"


@dataclass(frozen=True)
class MathProblem:
    """One math problem: the text shown to the model and the gold final answer."""

    id: str
    problem: str
    answer: str


class MathBenchmark(SuiteBenchmark):
    """A math set: greedy pass@1 / sampled pass@k of math-verified final answers.

    Args:
        path, env_options, prompt: see :class:`.base.SuiteBenchmark`
            (``env_options.timeout``: seconds per answer check).
        checker: an existing :class:`.mathcheck.MathChecker` (not closed by :meth:`close`).
    """

    problem_keys: ClassVar[tuple[str, ...]] = ("problem", "question", "Problem", "Question")
    answer_keys: ClassVar[tuple[str, ...]] = ("answer", "final_answer", "Answer", "expected_answer")
    id_keys: ClassVar[tuple[str, ...]] = ("id", "unique_id", "problem_id", "ID", "idx")

    def __init__(
        self,
        path: str | Path | None = None,
        env_options: Mapping[str, Any] | None = None,
        prompt: str = "azr",
        checker: MathChecker | None = None,
    ) -> None:
        super().__init__(path, env_options, prompt)
        self._checker = checker
        self._owns_checker = checker is None
        self._problems: dict[str, MathProblem] = {}

    @classmethod
    def check_path(cls, path: str | None) -> None:
        """Fail fast (before a model is loaded) when the data or math-verify is missing.

        Raises:
            DatasetError: the data file does not exist.
            MathVerifyUnavailable: math-verify is not installed (with the install hint).
        """
        super().check_path(path)
        reason = available()
        if reason is not None:
            raise MathVerifyUnavailable(f"{cls.name}: {reason}")

    @property
    def checker(self) -> MathChecker:
        """The math-verify helper (its process starts on first check)."""
        if self._checker is None:
            self._checker = MathChecker(float(self.options.get("timeout", ITEM_TIMEOUT)))
        return self._checker

    def gold(self, row: dict[str, Any], where: str) -> str:
        """The row's gold final answer as text (numbers and one-element lists accepted).

        Raises:
            DatasetError: no answer key, or an answer that is not text or a number.
        """
        for key in self.answer_keys:
            value = row.get(key)
            if isinstance(value, list) and len(value) >= 1:
                value = value[0]
            if isinstance(value, bool):
                break
            if isinstance(value, (int, float)):
                return str(value)
            if isinstance(value, str) and value.strip():
                return value.strip()
            if value is not None:
                raise DatasetError(f"{where}: {key!r} must be text or a number, got {type(value).__name__}")
        raise DatasetError(f"{where}: no answer; expected one of {', '.join(map(repr, self.answer_keys))}")

    def parse(self, rows: list[Row]) -> list[MathProblem]:
        """Rows -> problems (ids from the row, else ``<name>/<row number>``).

        Raises:
            DatasetError: a row without a problem text or an answer.
        """
        problems = []
        for index, (where, row) in enumerate(rows):
            text = text_field(row, where, *self.problem_keys)
            if not text.strip():
                raise DatasetError(f"{where}: the problem text is empty")
            raw_id = next((row[key] for key in self.id_keys if row.get(key) not in (None, "")), None)
            problem_id = str(raw_id) if raw_id is not None else f"{self.name}/{index}"
            problems.append(MathProblem(id=problem_id, problem=text.strip(), answer=self.gold(row, where)))
        unique_ids([p.id for p in problems], f"{self.name} data")
        return problems

    def prepare(self, problems: Sequence[MathProblem]) -> tuple[list[PreparedTask], list[dict[str, str]]]:
        """Tasks for the harness; a gold answer that does not verify against itself is
        skipped with the reason."""
        checks = self.checker.check_many([(p.answer, p.answer) for p in problems])
        prepared, skipped = [], []
        for problem, (ok, reason) in zip(problems, checks):
            if ok:
                prepared.append(PreparedTask(problem=problem, task=Task(TASK_TYPE, {"id": problem.id})))
            else:
                why = f"the gold answer {problem.answer!r} does not verify: {reason}"
                skipped.append({"id": problem.id, "reason": why})
        self._problems = {p.id: p for p in problems}
        return prepared, skipped

    def solver_prompt(self, task: Task) -> Prompt:
        """The prompt in this benchmark's prompt style."""
        return prompts.math_prompt(self.prompt_style, self._problems[task.payload["id"]].problem)

    def score(self, tasks: Sequence[Task], prompts_: Sequence[Prompt], responses: Sequence[str]) -> list[Verdict]:
        """1.0 when the response's final answer is math-equivalent to the gold answer."""
        answers = [prompts.extract_math_answer(response) for response in responses]
        pairs = [(self._problems[t.payload["id"]].answer, a) for t, a in zip(tasks, answers) if a is not None]
        results = iter(self.checker.check_many(pairs)) if pairs else iter(())
        verdicts = []
        for answer in answers:
            if answer is None:
                verdicts.append(Verdict(0.0, format_ok=False, reason="no <answer> block and no \\boxed{} answer"))
                continue
            ok, reason = next(results)
            verdicts.append(Verdict(1.0 if ok else 0.0, reason=reason))
        return verdicts

    def close(self) -> None:
        """Stop the checker process if this benchmark started it. Safe to call twice."""
        if self._owns_checker and self._checker is not None:
            self._checker.close()
            self._checker = None
