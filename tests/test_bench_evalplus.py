"""HumanEval+ and MBPP+ (evalplus.py): reference outputs in the sandbox, EvalPlus's
comparison and oracles, MBPP+ input conversion, scoring, records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _bench_helpers import ScriptedAgent, fence, write_jsonl
from absolutezero_benchmarks.codegen import to_source
from absolutezero_benchmarks.dataset import DatasetError
from absolutezero_benchmarks.evalplus import HumanEvalPlus, MBPPPlus, mbpp_inputs
from absolutezero_benchmarks.harness import run_benchmark
from absolutezero_benchmarks.report import write_results

# Made-up problems in EvalPlus's published format.
HUMANEVAL_PLUS = [
    {"task_id": "HumanEval/0", "entry_point": "mean_plus",
     "prompt": 'from typing import List\n\n\ndef mean_plus(xs: List[float], y: float) -> float:\n    """Mean of xs plus y."""\n',
     "canonical_solution": "    return sum(xs) / len(xs) + y\n",
     "base_input": [[[1.0, 2.0], 0.5]], "plus_input": [[[1e10, 3.0], 0.1], [[0.1, 0.2], 0.3]], "atol": 0},
    {"task_id": "HumanEval/32", "entry_point": "find_zero",
     "prompt": 'def poly(xs: list, x: float):\n    return sum(c * x ** i for i, c in enumerate(xs))\n\n\ndef find_zero(xs: list):\n    """A root of poly(xs)."""\n',
     "canonical_solution": ("    lo, hi = -100.0, 100.0\n    for _ in range(200):\n        mid = (lo + hi) / 2\n"
                            "        if (poly(xs, lo) < 0) == (poly(xs, mid) < 0):\n            lo = mid\n"
                            "        else:\n            hi = mid\n    return lo\n"),
     "base_input": [[[1, 2]]], "plus_input": [[[-6, 11, -6, 1]]], "atol": 1e-4},
    {"task_id": "HumanEval/9", "entry_point": "ratio", "prompt": 'def ratio(a: float) -> float:\n    """1/a."""\n',
     "canonical_solution": "    return a / 0.0 if a else float('nan')\n", "base_input": [[0.0]], "plus_input": [], "atol": 0},
]
MBPP_PLUS = [
    {"task_id": "Mbpp/2", "entry_point": "similar_elements",
     "prompt": '"""\nWrite a function to find the shared elements from the given two tuples.\nassert set(similar_elements((3, 4), (4, 5))) == set((4,))\n"""\n',
     "canonical_solution": "def similar_elements(a, b):\n    assert isinstance(a, tuple)\n    return tuple(set(a) & set(b))\n",
     "base_input": [[[3, 4, 5, 6], [5, 7, 4, 10]]], "plus_input": [[[1, 2], [3]]], "atol": 0},
    {"task_id": "Mbpp/9001", "entry_point": "check_str",
     "prompt": '"""\nWrite a function to check whether a string starts with a vowel.\n"""\n',
     "canonical_solution": "import re\ndef check_str(s):\n    return re.search('^[aeiou]', s)\n",
     "base_input": [["apple"], ["pear"]], "plus_input": [], "atol": 0},
    {"task_id": "Mbpp/9002", "entry_point": "circle_area",
     "prompt": '"""\nWrite a function for the area of a circle of radius r (pi = 3.14159).\n"""\n',
     "canonical_solution": "def circle_area(r):\n    return 3.14159 * r * r\n",
     "base_input": [[1.0], [2.5]], "plus_input": [[1e-3]], "atol": 0},
]


@pytest.fixture(scope="module")
def executor():
    from absolutezero_code.executor import Executor

    with Executor(workers=1, timeout=5.0, output_limit=1_000_000) as instance:
        yield instance


def prepared(cls, rows, tmp_path: Path, executor):
    bench = cls(path=write_jsonl(tmp_path / f"{cls.name}.jsonl", rows), executor=executor)
    ready, skipped = bench.prepare(bench.load())
    return bench, [p.task for p in ready], skipped


def score(bench, tasks, codes):
    prompts = [bench.solver_prompt(t) for t in tasks]
    return [v.score for v in bench.score(tasks, prompts, [fence(c) for c in codes])]


def test_humaneval_plus_reference_outputs_comparison_and_oracle(executor, tmp_path: Path) -> None:
    bench, tasks, skipped = prepared(HumanEvalPlus, HUMANEVAL_PLUS, tmp_path, executor)
    assert len(tasks) == 2 and [s["id"] for s in skipped] == ["HumanEval/9"]
    assert "fails in the sandbox" in skipped[0]["reason"] and ("NaN" in skipped[0]["reason"] or "infinity" in skipped[0]["reason"])
    right = ["def mean_plus(xs, y):\n    return sum(xs) / len(xs) + y + 1e-12",  # allclose, not ==
             "def find_zero(xs):\n    lo, hi = -50.0, 50.0\n    for _ in range(100):\n        m = (lo + hi) / 2\n"
             "        if (poly(xs, lo) < 0) == (poly(xs, m) < 0):\n            lo = m\n        else:\n            hi = m\n    return lo"]
    assert score(bench, tasks, right) == [1.0, 1.0]
    wrong = ["def mean_plus(xs, y):\n    return int(sum(xs) / len(xs) + y)",  # right on no input as an int
             "def find_zero(xs):\n    return 0.5"]
    assert score(bench, tasks, wrong) == [0.0, 0.0]
    hacks = ["class Yes(float):\n    def __eq__(self, other):\n        return True\n\ndef mean_plus(xs, y):\n    return Yes(0)",
             "import math\nmath.pow = lambda *a: 0.0\ndef find_zero(xs):\n    return 123.0"]
    assert score(bench, tasks, hacks) == [0.0, 0.0]
    body_only = ["    return sum(xs) / len(xs) + y"]  # continues the prompt (its List import included)
    assert score(bench, tasks[:1], body_only) == [1.0]


def test_mbpp_plus_inputs_oracles_and_floats(executor, tmp_path: Path) -> None:
    bench, tasks, skipped = prepared(MBPPPlus, MBPP_PLUS, tmp_path, executor)
    assert skipped == [] and len(tasks) == 3  # the reference asserts its input became a tuple
    right = ["def similar_elements(a, b):\n    return sorted(x for x in a if x in b)",  # a set-valued task: any order, list ok
             "def check_str(s):\n    return s[:1] in 'aeiou' and len(s) > 0",  # a bool for a match object
             "def circle_area(r):\n    return r * r * 3.14159 * (1 + 1e-9)"]
    assert score(bench, tasks, right) == [1.0, 1.0, 1.0]
    wrong = ["def similar_elements(a, b):\n    return a", "def check_str(s):\n    return None",
             "import math\ndef circle_area(r):\n    return math.pi * r * r"]
    assert score(bench, tasks, wrong) == [0.0, 0.0, 0.0]
    evil = ["import subprocess\ndef similar_elements(a, b):\n    return subprocess.run(['id'])"]
    verdict = bench.score(tasks[:1], [bench.solver_prompt(tasks[0])], [fence(evil[0])])[0]
    assert verdict.score == 0.0 and verdict.reason.startswith("rejected")


def test_mbpp_inputs_are_converted_like_evalplus() -> None:
    assert mbpp_inputs("Mbpp/2", [[[1, 2], [3]]]) == [[(1, 2), (3,)]]
    assert mbpp_inputs("Mbpp/63", [[[[1, 2], [3, 4]]]]) == [[[(1, 2), (3, 4)]]]
    assert mbpp_inputs("Mbpp/124", [[1, "1+2j"]]) == [(1.0, 1 + 2j)]
    assert mbpp_inputs("Mbpp/580", [[[1, [2, 3]]]]) == [((1, (2, 3)),)]
    assert mbpp_inputs("Mbpp/3", [[[1, 2]]]) == [[[1, 2]]]  # no conversion for the others


def test_to_source_writes_values_repr_cannot() -> None:
    value = [float("inf"), -float("inf"), (1,), set(), {2, 1}, {"k": (1 + 2j)}, None, b"x"]
    source = to_source(value)
    assert "float('inf')" in source and "set()" in source and "complex(1.0, 2.0)" in source
    with pytest.raises(TypeError, match="not plain data"):
        to_source([object()])


def test_figures_and_records(executor, tmp_path: Path) -> None:
    bench = MBPPPlus(path=write_jsonl(tmp_path / "m.jsonl", MBPP_PLUS[:2]), executor=executor)
    agent = ScriptedAgent(greedy={"shared elements": fence("def similar_elements(a, b):\n    return tuple(set(a) & set(b))"),
                                  "starts with a vowel": "I do not know"})
    result = run_benchmark(bench, agent, bench.load(), model="scripted")
    assert result.pass_at_1 == 0.5 and result.format_error_rate == 0.5
    assert result.records[0].messages[-1]["content"].startswith("Please provide a self-contained Python script")
    write_results(tmp_path / "out", [result])
    saved = json.loads((tmp_path / "out" / "results.json").read_text())["benchmarks"]["mbpp-plus"]
    assert saved["pass@1"] == 0.5 and (tmp_path / "out" / "mbpp-plus.records.jsonl").is_file()


@pytest.mark.parametrize(
    "change, message",
    [({"base_input": "1"}, "must be a list of argument lists"), ({"atol": "x"}, "'atol' must be a number"),
     ({"base_input": [], "plus_input": []}, "no test inputs"), ({"base_input": [5]}, "not an argument list")],
)
def test_bad_rows_are_clear_errors(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        HumanEvalPlus(path=write_jsonl(tmp_path / "b.jsonl", [{**HUMANEVAL_PLUS[0], **change}])).load()
    with pytest.raises(DatasetError, match="HumanEval\\+ file"):
        HumanEvalPlus.check_path(str(tmp_path / "none.jsonl.gz"))
