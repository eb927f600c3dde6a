"""The shared math base (math_sets.py): rows, gold checks, answer extraction, verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from _bench_helpers import ScriptedAgent, write_jsonl
from absolutezero_benchmarks.dataset import DatasetError
from absolutezero_benchmarks.harness import run_benchmark
from absolutezero_benchmarks.math_sets import MathBenchmark
from absolutezero_benchmarks.sources import Source


class Toy(MathBenchmark):
    name = "toy-math"
    source = Source(what="toy math", env_var="ABSOLUTEZERO_TOY_MATH", relative="math/toy.jsonl")


def test_rows_ids_and_answer_keys(tmp_path: Path) -> None:
    rows = [{"question": "What is 1+1? (a)", "answer": 2}, {"problem": "Half? (b)", "final_answer": ["$\\frac12$"], "id": 7},
            {"Problem": "Three? (c)", "Answer": " 3 "}]
    problems = Toy(path=write_jsonl(tmp_path / "t.jsonl", rows), checker=object()).load()  # type: ignore[arg-type]
    assert [(p.id, p.answer) for p in problems] == [("toy-math/0", "2"), ("7", "$\\frac12$"), ("toy-math/2", "3")]
    for bad, message in [({"question": "  ", "answer": "1"}, "problem text is empty"),
                         ({"question": "q", "answer": {"x": 1}}, "'answer' must be text or a number"),
                         ({"answer": "1"}, "missing key 'problem' or 'question'")]:
        with pytest.raises(DatasetError, match=message):
            Toy(path=write_jsonl(tmp_path / "bad.jsonl", [bad]), checker=object()).load()  # type: ignore[arg-type]


def test_unverifiable_gold_is_skipped_and_answers_are_read_from_either_place(math_checker, tmp_path: Path) -> None:
    rows = [{"question": "Q one (a)", "answer": "12"}, {"question": "Q two (b)", "answer": "\\frac{3}{4}"},
            {"question": "Q three (c)", "answer": "\\begin{cases"}]
    bench = Toy(path=write_jsonl(tmp_path / "t.jsonl", rows), checker=math_checker)
    agent = ScriptedAgent(greedy={"(a)": " so </think> <answer>The answer is \\boxed{12}.</answer>",
                                  "(b)": " thus the result is \\boxed{0.75} and more text"})
    result = run_benchmark(bench, agent, bench.load())
    assert [s["id"] for s in result.skipped] == ["toy-math/2"] and "does not verify" in result.skipped[0]["reason"]
    assert result.pass_at_1 == 1.0 and result.format_error_rate == 0.0
    wrong = ScriptedAgent(greedy={"(a)": "<answer>13</answer>", "(b)": "I think it is 0.75"})
    result = run_benchmark(bench, wrong, bench.load())
    assert result.pass_at_1 == 0.0 and result.format_error_rate == 0.5
    reasons = [r.verdicts[0]["reason"] for r in result.records]
    assert reasons == ["not equivalent to the gold answer", "no <answer> block and no \\boxed{} answer"]


def test_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown option"):
        Toy(env_options={"temperature": 1})
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        Toy(env_options={"timeout": 0})
    assert Toy(env_options={"timeout": 7, "workers": 2}).checker.item_timeout == 7.0


def test_without_math_verify_the_command_line_says_so_before_loading_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from absolutezero.evaluate import main
    from absolutezero_benchmarks import math_sets

    monkeypatch.setattr(math_sets, "available", lambda: "math-verify is not installed: pip install 'absolutezero[eval]'")
    data = write_jsonl(tmp_path / "aime.jsonl", [{"problem": "p", "answer": "1"}])
    assert main(["benchmark=aime24", f"path={data}", "model=/no/such/model"]) == 2
    err = capsys.readouterr().err
    assert "aime24: math-verify is not installed" in err and "absolutezero[eval]" in err and "Traceback" not in err
