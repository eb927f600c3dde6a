"""`python -m absolutezero.evaluate` and `evaluate()`: argument errors, real runs with a tiny model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from absolutezero.config import ConfigError
from absolutezero.evaluate import EvalArgs, evaluate, main, parse_args

ROWS = [
    {"id": "e0", "code": "def f(x):\n    return x + 1", "input": "1", "output": "2"},
    {"id": "e1", "code": "def f(s):\n    return s.upper()", "input": "'ab'", "output": "'AB'"},
    {"id": "e2", "code": "def f(a, b):\n    return [a, b]", "input": "1, 'x'", "output": "[1, 'x']"},
    {"id": "e3", "code": "def f(xs):\n    return max(xs)", "input": "[4, 9, 2]", "output": "9"},
]


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    path = tmp_path / "toy.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")
    return path


# ---------------------------------------------------------------- argument parsing


def test_parse_args_reads_typed_values(data: Path) -> None:
    args = parse_args(
        ["benchmark=cruxeval-o,cruxeval-i", f"path={data}", "limit=3", "seed=5", "k=2", "samples=4",
         "temperature=0.7", "out=evals/x", "progress=false", "agent_options.dtype=float32"]
    )
    assert args == EvalArgs(
        benchmark="cruxeval-o,cruxeval-i", path=str(data), limit=3, seed=5, k=2, samples=4,
        temperature=0.7, out="evals/x", progress=False, agent_options={"dtype": "float32"},
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["benchmark=cruxeval-o", "limt=3"], "unknown argument 'limt'; did you mean 'limit'?"),
        (["benchmark=cruxeval-o", "limit=ten"], "limit must be an integer, got 'ten'"),
        (["benchmark=cruxeval-o", "k=5", "samples=2"], "pass@5 needs samples >= k"),
        (["limit=3"], "missing benchmark="),
        (["benchmark=cruxeval-o", "cruxeval-i"], "arguments are key=value"),
        (["benchmark=cruxeval-o", "temperature=0"], "temperature must be > 0"),
        (["benchmark=cruxeval-o", "limit=0"], "limit must be a positive integer"),
    ],
)
def test_parse_args_errors(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("?", r"\?")):
        parse_args(argv)


def test_unknown_benchmark_exits_2_with_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["benchmark=cruxeval-x"]) == 2
    err = capsys.readouterr().err
    assert "unknown benchmark 'cruxeval-x'; did you mean 'cruxeval-o'?" in err or (
        "unknown benchmark 'cruxeval-x'; did you mean 'cruxeval-i'?" in err
    )


def test_missing_data_path_exits_2_before_loading_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.jsonl"
    # model= points nowhere too: the data error must come first, without a model load
    assert main(["benchmark=cruxeval-o", f"path={missing}", "model=/no/such/model"]) == 2
    err = capsys.readouterr().err
    assert f"the given CruxEval file {str(missing)!r} does not exist" in err and "path=" in err


def test_missing_default_data_exits_2_and_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ABSOLUTEZERO_CRUXEVAL", str(tmp_path / "moved.jsonl"))
    assert main(["benchmark=cruxeval-i", "model=/no/such/model"]) == 2
    err = capsys.readouterr().err
    assert "the default CruxEval file" in err and "moved.jsonl" in err and "ABSOLUTEZERO_CRUXEVAL" in err


def test_real_command_line_exit_status_and_message() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "absolutezero.evaluate", "benchmark=cruxevalo"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2
    assert "unknown benchmark 'cruxevalo'; did you mean 'cruxeval-o'?" in out.stderr
    assert "Traceback" not in out.stderr


# ---------------------------------------------------------------- real runs (tiny random model)


def test_cli_run_writes_table_results_and_records(
    tiny_model_dir: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    status = main(
        ["benchmark=cruxeval-o,cruxeval-i", f"model={tiny_model_dir}", f"path={data}", "limit=3",
         "max_new_tokens=12", "batch_size=4", f"out={out}", "progress=false", "env_options.workers=2"]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    table = captured.out
    for text in ("benchmark", "pass@1", "format err", "cruxeval-o", "cruxeval-i", str(tiny_model_dir)):
        assert text in table
    results = json.loads((out / "results.json").read_text())
    assert sorted(results["benchmarks"]) == ["cruxeval-i", "cruxeval-o"]
    for name, summary in results["benchmarks"].items():
        assert summary["n_problems"] == 3 and summary["n_skipped"] == 0
        assert 0.0 <= summary["pass@1"] <= 1.0 and 0.0 <= summary["format_error_rate"] <= 1.0
        assert summary["settings"]["limit"] == 3
        # the decoding is recorded, so that `compare=` can refuse different decodings
        assert summary["settings"]["prompt"] == "azr"
        assert summary["settings"]["decoding"] == {
            "temperature": 0.8, "top_p": 1.0, "max_new_tokens": 12, "backend": "hf", "greedy_pass@1": True,
        }
        records = [json.loads(line) for line in (out / f"{name}.records.jsonl").read_text().splitlines()]
        assert [r["id"] for r in records] == ["e0", "e1", "e2"]
        for record in records:
            assert len(record["responses"]) == len(record["verdicts"]) == 1
            assert record["responses"][0].startswith(record["prefill"])
            verdict = record["verdicts"][0]
            assert set(verdict) == {"score", "format_ok", "reason"}
            assert record["correct"] == [verdict["score"] >= 1.0]
            # a random model almost never answers in format; when it fails, it says why
            assert verdict["score"] >= 1.0 or verdict["reason"]


def test_evaluate_with_a_loaded_agent_on_a_seeded_subset(tiny_model_dir: Path, data: Path, tmp_path: Path) -> None:
    from absolutezero.registry import make_agent

    agent = make_agent("policy", {"model": str(tiny_model_dir), "max_new_tokens": 8, "seed": 3})
    try:
        metrics = evaluate(
            "cruxeval-o", agent, path=str(data), limit=2, k=2, samples=2, out_dir=str(tmp_path), seed=11,
            env_options={"workers": 2},
        )
    finally:
        agent.close()
    assert set(metrics) >= {"cruxeval-o/pass@1", "cruxeval-o/pass@2", "cruxeval-o/pass@1_sampled",
                            "cruxeval-o/format_error_rate", "cruxeval-o/n_problems"}
    assert metrics["cruxeval-o/n_problems"] == 2.0
    assert all(isinstance(v, float) for v in metrics.values())
    records = [json.loads(line) for line in (tmp_path / "cruxeval-o.records.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(r["decoding"] == ["greedy", "sampled", "sampled"] for r in records)
    settings = json.loads((tmp_path / "results.json").read_text())["benchmarks"]["cruxeval-o"]["settings"]
    assert settings["decoding"]["max_new_tokens"] == 8  # read off the live agent's backend
    from absolutezero_benchmarks.dataset import load_jsonl, select

    assert [r["id"] for r in records] == [p.id for p in select(load_jsonl(data), 2, seed=11)]


# ---------------------------------------------------------------- decoding settings, compare=


def test_agent_decoding_reads_the_agent_or_its_backend() -> None:
    from types import SimpleNamespace

    from absolutezero.evaluate import agent_decoding

    backend = SimpleNamespace(temperature=0.7, top_p=0.95, max_new_tokens=64)
    assert agent_decoding(SimpleNamespace(backend=backend)) == {"temperature": 0.7, "top_p": 0.95, "max_new_tokens": 64}
    assert agent_decoding(SimpleNamespace(max_new_tokens=5, temperature=True)) == {"max_new_tokens": 5}
    assert agent_decoding(object()) == {}


def test_compare_goes_to_the_paired_comparison(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # compare= is its own command: no benchmark= needed, and its errors exit 2
    assert main([f"compare={tmp_path / 'a'},{tmp_path / 'b'}"]) == 2
    assert "holds no results.json" in capsys.readouterr().err


def test_help_lists_every_argument_with_its_default_and_the_benchmarks(capsys) -> None:
    from dataclasses import fields

    from absolutezero.evaluate import EvalArgs, main

    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for item in fields(EvalArgs):
        assert f"\n  {item.name} " in text
    assert "default null" in text and "default true" in text and "cruxeval-o" in text
