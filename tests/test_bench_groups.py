"""The paper's groups (groups.py): members run with the same settings, Code Avg, Math
Avg and Total = (Code Avg + Math Avg) / 2 in the table, results.json and metrics."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from _bench_helpers import ScriptedAgent, fence, math_verify_or_skip, write_jsonl
from absolutezero_benchmarks.dataset import DatasetError
from absolutezero_benchmarks.groups import GroupResult, Paper, PaperCode, PaperMath
from absolutezero_benchmarks.harness import BenchmarkResult


def write_gz(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(row) + "\n" for row in rows))


def data_folder(root: Path) -> Path:
    """One made-up problem per member, each at its usual place under the data folder."""
    write_gz(root / "evalplus" / "HumanEvalPlus.jsonl.gz", [{
        "task_id": "HumanEval/0", "entry_point": "twice", "prompt": 'def twice(x: int) -> int:\n    """zz-he: 2x."""\n',
        "canonical_solution": "    return 2 * x\n", "base_input": [[1]], "plus_input": [[-3], [10]], "atol": 0}])
    write_gz(root / "evalplus" / "MbppPlus.jsonl.gz", [{
        "task_id": "Mbpp/9003", "entry_point": "thrice", "prompt": '"""\nzz-mbpp: Write a function for 3x.\n"""\n',
        "canonical_solution": "def thrice(x):\n    return 3 * x\n", "base_input": [[1]], "plus_input": [[2]], "atol": 0}])
    write_jsonl(root / "livecodebench" / "test5.jsonl", [{
        "question_id": "abc9", "question_content": "zz-lcb: print the input doubled.", "contest_date": "2024-09-09",
        "starter_code": "", "public_test_cases": json.dumps([{"input": "4\n", "output": "8\n", "testtype": "stdin"}]),
        "private_test_cases": "", "metadata": "{}"}])
    for name, answer in [("aime24", "204"), ("aime25", "70"), ("amc23", "27"), ("math500", "\\frac{1}{2}"),
                         ("minerva", "7.5"), ("olympiadbench", "5")]:
        write_jsonl(root / "math" / f"{name}.jsonl", [{"problem": f"zz-{name}: find it.", "answer": answer}])
    return root


AGENT = ScriptedAgent(greedy={
    "zz-he": fence("def twice(x):\n    return x + x"),
    "zz-mbpp": fence("def thrice(x):\n    return 3"),  # wrong
    "zz-lcb": fence("print(int(input()) * 2)"),
    "zz-aime24": "<answer>204</answer>", "zz-aime25": "<answer>71</answer>", "zz-amc23": "\\boxed{27}",
    "zz-math500": "<answer>0.5</answer>", "zz-minerva": "no answer", "zz-olympiadbench": "<answer>4</answer>",
})


def test_group_averages_arithmetic() -> None:
    def result(name: str, score: float) -> BenchmarkResult:
        return BenchmarkResult(name, "m", 1, [], 1, 1, True, score, None, None, 0.0, 0.0)

    code = [result("humaneval-plus", 0.5), result("mbpp-plus", 0.25), result("livecodebench", 0.0)]
    math = [result(name, score) for name, score in zip(("aime24", "aime25", "amc23", "math500", "minerva", "olympiadbench"),
                                                       (0.1, 0.2, 0.3, 0.4, 0.5, 0.6))]
    paper = GroupResult("paper", "m", code + math, tuple(r.benchmark for r in code), tuple(r.benchmark for r in math))
    averages = paper.averages()
    assert averages["Code Avg"] == pytest.approx(0.25) and averages["Math Avg"] == pytest.approx(0.35)
    assert averages["Total"] == pytest.approx(0.30)
    only_code = GroupResult("paper-code", "m", code, paper.code, ())
    assert list(only_code.averages()) == ["Code Avg"]
    assert paper.metrics()["paper/total"] == pytest.approx(0.30) and "aime24/pass@1" in paper.metrics()
    assert [c.name for c in PaperCode.members()] == ["humaneval-plus", "mbpp-plus", "livecodebench"]
    assert [c.name for c in PaperMath.members()] == ["aime24", "aime25", "amc23", "math500", "minerva", "olympiadbench"]


def test_paper_through_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    math_verify_or_skip()
    from absolutezero.evaluate import evaluate

    folder = data_folder(tmp_path / "data")
    Paper.check_path(str(folder))
    metrics = evaluate("paper", AGENT, path=str(folder), out_dir=str(tmp_path / "out"), model="scripted",
                       env_options={"workers": 1}, print_table=True)
    assert metrics["humaneval-plus/pass@1"] == 1.0 and metrics["mbpp-plus/pass@1"] == 0.0
    assert metrics["livecodebench/pass@1"] == 1.0
    assert metrics["paper/code_avg"] == pytest.approx(2 / 3)
    assert metrics["paper/math_avg"] == pytest.approx(3 / 6)  # aime24, amc23, math500
    assert metrics["paper/total"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    table = capsys.readouterr().out
    assert "mbpp-plus" in table and "olympiadbench" in table
    assert "paper: Code Avg: 66.7%  Math Avg: 50.0%  Total: 58.3%" in table
    saved = json.loads((tmp_path / "out" / "results.json").read_text())["benchmarks"]
    assert saved["paper"]["group"] is True and saved["paper"]["total"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert saved["aime24"]["pass@1"] == 1.0 and saved["aime24"]["settings"]["prompt"] == "azr"
    assert (tmp_path / "out" / "minerva.records.jsonl").is_file()


def test_missing_member_data_is_reported_before_a_model_loads(tmp_path: Path, capsys) -> None:
    from absolutezero.evaluate import main

    folder = data_folder(tmp_path / "data")
    (folder / "math" / "amc23.jsonl").unlink()
    with pytest.raises(DatasetError, match="AMC23 file.*amc23.jsonl"):
        PaperMath.check_path(str(folder))
    PaperCode.check_path(str(folder))  # the code members are all there
    with pytest.raises(DatasetError, match="must be a data folder"):
        Paper.check_path(str(folder / "math" / "aime24.jsonl"))
    assert main(["benchmark=paper-math", f"path={folder}", "model=/no/such/model"]) == 2
    assert "AMC23 file" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown option"):
        Paper(env_options={"prefill": "think"})
