"""LiveCodeBench code execution (``livecodebench/execution-v2``): predict a function's
output, scored exactly like CruxEval-O (deduction), through the code environment.

A row: ``code`` (a LeetCode-style solution function), ``function_name``, ``input`` as a
call (``maximumTripletValue(nums = [12, 6, 1])``), ``output`` (a literal), ``id`` or
``question_id``. Each row becomes a CruxEval problem: the program is the code with a
small ``def f(...)`` that calls the function with the row's argument names, and the input
is the call's literal arguments in order. The call is read with :mod:`ast` (parsed,
never run); a call to another function, ``*args`` or ``**kwargs`` is a row error. As in
CruxEval, a row whose gold output does not come out of the sandbox is skipped with the
reason.
"""

from __future__ import annotations

import ast
import re

from absolutezero_benchmarks.cruxeval import CruxEvalO
from absolutezero_benchmarks.dataset import DatasetError, Problem, select
from absolutezero_benchmarks.sources import Source, text_field, unique_ids

__all__ = ["LiveCodeBenchExecution", "as_cruxeval"]

_TYPING = ("List", "Dict", "Tuple", "Set", "Optional")


def as_cruxeval(where: str, row: dict[str, object]) -> Problem:
    """One execution row as a CruxEval problem (program with ``f``, input, output).

    Raises:
        DatasetError: a missing field, or an input that is not a call of
            ``function_name`` with literal-looking arguments.
    """
    code = text_field(row, where, "code")
    name = text_field(row, where, "function_name")
    text = text_field(row, where, "input").strip()
    output = text_field(row, where, "output")
    problem_id = text_field(row, where, "id", "question_id")
    try:
        call = ast.parse(text, mode="eval").body
    except SyntaxError as error:
        raise DatasetError(f"{where}: 'input' is not a call ({error.msg})") from None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == name):
        raise DatasetError(f"{where}: 'input' must be a call of {name!r}, got {text[:80]!r}")
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        raise DatasetError(f"{where}: 'input' uses *args or **kwargs")
    values = [ast.get_source_segment(text, node) or "" for node in [*call.args, *(k.value for k in call.keywords)]]
    params = [f"arg{i}" for i in range(len(call.args))] + [str(k.arg) for k in call.keywords]
    passed = [f"arg{i}" for i in range(len(call.args))] + [f"{k.arg}={k.arg}" for k in call.keywords]
    used = [t for t in _TYPING if re.search(rf"\b{t}\b", code)]
    imports = f"from typing import {', '.join(used)}\n\n" if used else ""
    program = f"{imports}{code.rstrip()}\n\n\ndef f({', '.join(params)}):\n    return {name}({', '.join(passed)})"
    return Problem(id=problem_id, code=program, input=", ".join(values), output=output)


class LiveCodeBenchExecution(CruxEvalO):
    """LiveCodeBench code execution as output prediction (deduction)."""

    name = "livecodebench-execution"
    source = Source(
        what="LiveCodeBench code execution", env_var="ABSOLUTEZERO_LIVECODEBENCH_EXECUTION",
        relative="livecodebench/execution.jsonl", hub="livecodebench/execution-v2",
    )

    @classmethod
    def check_path(cls, path: str | None) -> None:
        """Fail fast (before a model is loaded) when the data file cannot be found."""
        cls.source.check(path)

    def load(self, limit: int | None = None, seed: int | None = None) -> list[Problem]:
        """The rows as CruxEval problems: all, the first ``limit``, or a seeded subset.

        Raises:
            DatasetError: the data is missing or malformed.
        """
        problems = [as_cruxeval(where, row) for where, row in self.source.rows(self.path)]
        unique_ids([p.id for p in problems], "LiveCodeBench execution data")
        return select(problems, limit, seed)
