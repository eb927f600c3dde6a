"""Shared pieces of the benchmark-suite tests (tests/test_bench_*.py): a scripted agent,
fixture writers and the math-set checks every thin math module's test file runs.

Fixtures are made-up problems in each benchmark's published format; no benchmark's real
data is written into the repository (tests/test_benchmark_isolation.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from absolutezero.protocol import Agent, Sample


def write_jsonl(path: Path, rows: Sequence[object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def fence(code: str) -> str:
    """A completion holding ``code`` in a python fence inside an answer block."""
    return f" plan </think>\n<answer>\n```python\n{code}\n```\n</answer>"


class ScriptedAgent(Agent):
    """Answers by table: the first key found in a prompt's last message picks the
    answers (greedy: ``greedy[key]``; sampled: ``sampled[key]`` in order)."""

    def __init__(self, greedy: dict[str, str], sampled: dict[str, list[str]] | None = None, default: str = "") -> None:
        self.greedy, self.sampled, self.default = greedy, sampled or {}, default
        self.calls: list[tuple[int, int, bool]] = []
        self.seen: list = []

    def _key(self, prompt) -> str | None:
        text = prompt.messages[-1]["content"]
        return next((key for key in [*self.greedy, *self.sampled] if key in text), None)

    def generate(self, prompts, num_samples=1, greedy=False):
        self.calls.append((len(prompts), num_samples, greedy))
        self.seen.extend(prompts)
        out = []
        for prompt in prompts:
            key = self._key(prompt)
            if key is None:
                texts = [self.default] * num_samples
            elif greedy:
                texts = [self.greedy.get(key, self.default)] * num_samples
            else:
                texts = (self.sampled.get(key) or [self.default] * num_samples)[:num_samples]
            out.append([Sample([1], [2], [0.0], text, "stop") for text in texts])
        return out

    def update(self, samples, advantages):
        raise AssertionError("evaluation must not train")

    def save(self, directory):
        raise AssertionError("evaluation must not save")

    def load(self, directory):
        raise AssertionError("evaluation must not load")


def math_verify_or_skip() -> None:
    from absolutezero_benchmarks.mathcheck import available

    reason = available()
    if reason is not None:
        pytest.skip(reason)


def run_math_set(cls, rows: list[dict], right: dict[str, str], wrong: dict[str, str], tmp_path: Path, checker) -> None:
    """The checks of one math set: its format loads, right answers score 1 (azr and
    native style), wrong and unformatted ones 0, records and results are written, and
    the data is found through the set's own variable."""
    from absolutezero_benchmarks.harness import run_benchmark
    from absolutezero_benchmarks.report import write_results

    data = write_jsonl(tmp_path / f"{cls.name}.jsonl", rows)
    bench = cls(path=data, checker=checker)
    problems = bench.load()
    assert len(problems) == len(rows)
    keys = list(right)
    agent = ScriptedAgent(
        greedy={key: f" work </think>\n<answer>{value}</answer>" for key, value in right.items()},
        sampled={key: [f"<answer>{right[key]}</answer>", f"<answer>{wrong[key]}</answer>", "no answer"] for key in keys},
    )
    result = run_benchmark(bench, agent, problems, k=2, samples=3, model="scripted")
    assert result.n_problems == len(rows) and result.skipped == []
    assert result.pass_at_1 == 1.0
    assert result.pass_at_1_sampled == pytest.approx(1 / 3)
    assert result.pass_at_k == pytest.approx(1 - 1 / 3)  # pass@2 with c=1 of n=3: 1 - C(2,2)/C(3,2)
    assert result.format_error_rate == pytest.approx(1 / 4)  # one unformatted sample of 4 responses
    record = result.records[0]
    assert record.prefill == "<think>" and record.messages[0]["role"] == "system"
    assert record.correct == [True, True, False, False] and record.verdicts[3]["format_ok"] is False
    write_results(tmp_path / "out", [result], {"model": "scripted"})
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["benchmarks"][cls.name]["pass@1"] == 1.0
    assert (tmp_path / "out" / f"{cls.name}.records.jsonl").is_file()

    native = cls(path=data, checker=checker, prompt="native")
    boxed = ScriptedAgent(greedy={key: f"So the answer is \\boxed{{{value}}}." for key, value in wrong.items()})
    result = run_benchmark(native, boxed, native.load())
    assert result.pass_at_1 == 0.0 and result.format_error_rate == 0.0
    assert "\\boxed{}" in result.records[0].prompt and result.records[0].prefill == ""
    assert all(m["role"] != "system" for m in result.records[0].messages)


def check_missing_answer(cls, row: dict, tmp_path: Path) -> None:
    """A row without any of the set's answer keys is a clear error naming its line."""
    from absolutezero_benchmarks.dataset import DatasetError

    bad = {key: value for key, value in row.items() if key not in cls.answer_keys}
    with pytest.raises(DatasetError, match=":1: no answer"):
        cls(path=write_jsonl(tmp_path / "bad.jsonl", [bad]), checker=object()).load()


def check_default_source(cls, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, row: dict) -> None:
    """The set's variable, then the data folder, name its default file; a missing one
    is a clear error naming both."""
    from absolutezero_benchmarks.dataset import DatasetError

    monkeypatch.delenv(cls.source.env_var, raising=False)
    monkeypatch.setenv("ABSOLUTEZERO_DATA", str(tmp_path / "data"))
    with pytest.raises(DatasetError, match=cls.source.env_var):
        cls.check_path(None)
    write_jsonl(tmp_path / "data" / cls.source.relative, [row])
    cls.check_path(None)
    assert len(cls(checker=object()).load()) == 1  # type: ignore[arg-type]
    other = write_jsonl(tmp_path / "elsewhere.jsonl", [row, {**row, "id": "other"}] if "id" in row else [row, row])
    monkeypatch.setenv(cls.source.env_var, str(other))
    assert cls.source.default_path() == other
