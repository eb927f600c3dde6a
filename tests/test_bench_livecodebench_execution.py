"""LiveCodeBench code execution (livecodebench_execution.py): rows become CruxEval-O
problems; scoring is the code environment's deduction verifier in the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from _bench_helpers import ScriptedAgent, write_jsonl
from absolutezero_benchmarks.cruxeval import gold_response
from absolutezero_benchmarks.dataset import DatasetError
from absolutezero_benchmarks.harness import run_benchmark
from absolutezero_benchmarks.livecodebench_execution import LiveCodeBenchExecution, as_cruxeval

# Made-up rows in the execution-v2 format.
ROWS = [
    {"id": "sample_0", "question_id": "1", "function_name": "bestPair", "numsteps": 5,
     "code": "def bestPair(nums: List[int], k: int) -> int:\n    return max(nums) * k",
     "input": "bestPair(nums = [3, 1, 2], k = 2)", "output": "6"},
    {"id": "sample_1", "question_id": "2", "function_name": "joinAll",
     "code": "def joinAll(words, sep):\n    return sep.join(words)", "input": "joinAll(['a', 'b'], sep = '-')", "output": "'a-b'"},
    {"id": "sample_2", "question_id": "3", "function_name": "broken",
     "code": "def broken(x):\n    return x + 1", "input": "broken(x = 1)", "output": "5"},
]


@pytest.fixture(scope="module")
def code_env():
    from absolutezero.registry import make_environment

    env = make_environment("code", {"workers": 1})
    yield env
    env.close()


def test_rows_become_cruxeval_problems() -> None:
    problem = as_cruxeval("row 0", ROWS[0])
    assert problem.input == "[3, 1, 2], 2" and problem.output == "6"
    assert problem.code.startswith("from typing import List\n")
    assert "def f(nums, k):\n    return bestPair(nums=nums, k=k)" in problem.code
    assert "def f(arg0, sep):\n    return joinAll(arg0, sep=sep)" in as_cruxeval("row 1", ROWS[1]).code
    with pytest.raises(DatasetError, match="must be a call of 'bestPair'"):
        as_cruxeval("row 9", {**ROWS[0], "input": "other(1)"})
    with pytest.raises(DatasetError, match=r"\*args or \*\*kwargs"):
        as_cruxeval("row 9", {**ROWS[0], "input": "bestPair(*xs)"})


def test_scoring_through_the_code_environment(code_env, tmp_path: Path) -> None:
    bench = LiveCodeBenchExecution(path=write_jsonl(tmp_path / "execution.jsonl", ROWS), environment=code_env)
    agent = ScriptedAgent(greedy={"[3, 1, 2], 2": gold_response("deduction", "6", ""),
                                  "['a', 'b'], '-'": gold_response("deduction", "'ab'", "")})
    result = run_benchmark(bench, agent, bench.load(), model="scripted")
    assert result.n_problems == 2 and [s["id"] for s in result.skipped] == ["sample_2"]  # its gold output is wrong
    assert [r.greedy_correct for r in result.records] == [True, False]
    assert "f(input) != output" in result.skipped[0]["reason"]


def test_missing_data_and_native_prompt_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="LiveCodeBench code execution file"):
        LiveCodeBenchExecution.check_path(str(tmp_path / "none.jsonl"))
    with pytest.raises(ValueError, match="unknown prompt style 'chat'"):
        LiveCodeBenchExecution(prompt="chat")
    LiveCodeBenchExecution(prompt="native").close()  # CruxEval-O's CoT prompt and scoring
