"""LiveCodeBench code generation (livecodebench.py): release_v5 rows, stdin and
functional tests in the sandbox, compressed private tests without unpickling."""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from pathlib import Path

import pytest

from _bench_helpers import ScriptedAgent, fence, write_jsonl
from absolutezero_benchmarks.dataset import DatasetError
from absolutezero_benchmarks.harness import run_benchmark
from absolutezero_benchmarks.livecodebench import LiveCodeBench, private_tests
from absolutezero_benchmarks.report import write_results


def packed(tests: list[dict]) -> str:
    """Private tests as the real release stores them: base64(zlib(pickle(JSON text)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode()


STDIN_ROW = {
    "question_title": "Sum", "question_content": "Print n times the sum of the numbers (zz-stdin).",
    "platform": "atcoder", "question_id": "abc001_a", "contest_id": "abc001", "contest_date": "2024-09-01T00:00:00",
    "starter_code": "", "difficulty": "easy",
    "public_test_cases": json.dumps([{"input": "2\n1 2\n", "output": "6\n", "testtype": "stdin"}]),
    "private_test_cases": packed([{"input": "1\n5 5 5\n", "output": "15", "testtype": "stdin"},
                                  {"input": "3\n0.5 0.5\n", "output": "3.0\n", "testtype": "stdin"}]),
    "metadata": "{}",
}
FUNCTIONAL_ROW = {
    "question_title": "Total", "question_content": "Return sum(nums) + k (zz-functional).",
    "platform": "leetcode", "question_id": "3000", "contest_id": "weekly-1", "contest_date": "2024-10-05T00:00:00",
    "starter_code": "class Solution:\n    def total(self, nums: List[int], k: int) -> int:\n        ",
    "difficulty": "easy",
    "public_test_cases": json.dumps([{"input": "[1, 2, 3]\n2", "output": "8", "testtype": "functional"}]),
    "private_test_cases": json.dumps([{"input": "[]\n5", "output": "5", "testtype": "functional"}]),
    "metadata": json.dumps({"func_name": "total"}),
}
STDIN_RIGHT = "import sys\nn = float(input())\nprint(n * sum(map(float, sys.stdin.readline().split())))"
FUNCTIONAL_RIGHT = "class Solution:\n    def total(self, nums: List[int], k: int) -> int:\n        return sum(nums) + k"


@pytest.fixture(scope="module")
def executor():
    from absolutezero_code.executor import Executor

    with Executor(workers=1, timeout=5.0) as instance:
        yield instance


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "test5.jsonl", [STDIN_ROW, FUNCTIONAL_ROW])


def scores(bench, codes):
    ready, _ = bench.prepare(bench.load())
    tasks = [p.task for p in ready]
    return bench.score(tasks, [bench.solver_prompt(t) for t in tasks], [fence(c) for c in codes])


def test_private_tests_decode_without_unpickling() -> None:
    tests = [{"input": "1", "output": "2", "testtype": "stdin"}]
    assert private_tests(packed(tests), "row") == tests
    assert private_tests(json.dumps(tests), "row") == tests
    assert private_tests("", "row") == []

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    evil = base64.b64encode(zlib.compress(pickle.dumps(Payload()))).decode()
    with pytest.raises(DatasetError, match="refusing to unpickle untrusted data"):
        private_tests(evil, "row 7")
    two = base64.b64encode(zlib.compress(pickle.dumps(["a", "b"]))).decode()
    with pytest.raises(DatasetError, match="refusing to unpickle"):
        private_tests(two, "row")
    with pytest.raises(DatasetError, match="neither JSON nor base64/zlib"):
        private_tests("not json, not zlib", "row")


def test_right_programs_pass_public_and_private_tests(executor, data: Path) -> None:
    bench = LiveCodeBench(path=data, executor=executor)
    problems = bench.load()
    assert [len(p.tests) for p in problems] == [3, 2]  # public + private
    verdicts = scores(bench, [STDIN_RIGHT, FUNCTIONAL_RIGHT])
    assert [v.score for v in verdicts] == [1.0, 1.0], [v.reason for v in verdicts]
    # a top-level function works as well as the Solution class (as in LiveCodeBench)
    assert scores(bench, ["n=1", "def total(nums, k):\n    return sum(nums) + k"])[1].score == 1.0


def test_wrong_and_malicious_programs_fail(executor, data: Path, tmp_path: Path) -> None:
    bench = LiveCodeBench(path=data, executor=executor)
    wrong = scores(bench, ["print(6)", "class Solution:\n    def total(self, nums, k):\n        return (sum(nums), k)"])
    assert [v.score for v in wrong] == [0.0, 0.0]
    assert wrong[0].reason.startswith("test 2 of 3: error: test failed: AssertionError: wrong answer on output line 1")
    marker = tmp_path / "pwned"
    evil = scores(bench, [f"import os\nos.system('touch {marker}')",
                          "class Solution:\n    def total(self, nums, k):\n        return len(open('/etc/hostname').read())"])
    assert [v.score for v in evil] == [0.0, 0.0]
    assert all(v.reason.split(": ", 2)[1] == "rejected" for v in evil), [v.reason for v in evil]
    assert not marker.exists()


def test_outputs_compare_by_lines_and_numbers(executor, tmp_path: Path) -> None:
    row = {**STDIN_ROW, "public_test_cases": json.dumps([{"input": "", "output": "1.0 2\nyes\n", "testtype": "stdin"}]),
           "private_test_cases": ""}
    bench = LiveCodeBench(path=write_jsonl(tmp_path / "t.jsonl", [row]), executor=executor)
    ok = ["print('1.00', 2)\nprint('yes  ')\nprint()", "print(1, '2.0')\nprint('yes')"]
    bad = ["print(1)\nprint('yes')", "print('1.0 2 yes')", "print('1.0 2')\nprint('no')"]
    assert [v.score for v in scores(bench, ok[:1])] == [1.0]
    for code in ok[1:] + bad:
        assert scores(bench, [code])[0].score == (1.0 if code in ok else 0.0), code


def test_date_window_prompts_and_records(executor, data: Path, tmp_path: Path) -> None:
    late = LiveCodeBench(path=data, executor=executor, env_options={"start_date": "2024-10-01"})
    assert [p.id for p in late.load()] == ["3000"]
    with pytest.raises(DatasetError, match="no problem in the date window"):
        LiveCodeBench(path=data, env_options={"end_date": "2023-01-01"}).load()
    bench = LiveCodeBench(path=data, executor=executor, prompt="native")
    agent = ScriptedAgent(greedy={"zz-stdin": f"```python\n{STDIN_RIGHT}\n```", "zz-functional": "no idea"})
    result = run_benchmark(bench, agent, bench.load(), model="scripted")
    assert result.pass_at_1 == 0.5 and result.format_error_rate == 0.5
    first = result.records[0]
    assert first.prefill == "" and "### Format: Read the inputs from stdin" in first.prompt
    assert "```python\nclass Solution:" in result.records[1].prompt
    write_results(tmp_path / "out", [result])
    assert json.loads((tmp_path / "out" / "results.json").read_text())["benchmarks"]["livecodebench"]["pass@1"] == 0.5


@pytest.mark.parametrize(
    "change, message",
    [({"public_test_cases": "{"}, "'public_test_cases' is not JSON"),
     ({"public_test_cases": "[]", "private_test_cases": ""}, "no tests"),
     ({"metadata": "{}"}, "need metadata.func_name"),
     ({"public_test_cases": json.dumps([{"input": "1", "output": "2", "testtype": "other"}])}, "unknown testtype"),
     ({"question_id": None}, "missing key 'question_id'")],
)
def test_bad_rows_are_clear_errors(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        LiveCodeBench(path=write_jsonl(tmp_path / "b.jsonl", [{**FUNCTIONAL_ROW, **change}])).load()
