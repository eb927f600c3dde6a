"""Prompt styles and answer extraction (prompts.py), data sources (sources.py)."""

from __future__ import annotations

import gzip
import json
import sys
import types
from pathlib import Path

import pytest

from absolutezero_benchmarks.dataset import DatasetError
from absolutezero_benchmarks.prompts import (
    check_style, code_prompt, extract_code, extract_math_answer, last_boxed, math_prompt,
)
from absolutezero_benchmarks.sources import Source, read_rows


def test_styles() -> None:
    azr, native = code_prompt("azr", "Write f."), code_prompt("native", "Write f.")
    assert azr.prefill == "<think>" and azr.messages[0]["role"] == "system" and "```python" in azr.messages[1]["content"]
    assert native.prefill == "" and native.messages == ({"role": "user", "content": "Write f."},)
    assert "\\boxed{}" in math_prompt("native", "1+1?").messages[0]["content"]
    assert "<answer>" in math_prompt("azr", "1+1?").messages[-1]["content"]
    with pytest.raises(ValueError, match="unknown prompt style 'r1'.*prompt=azr or prompt=native"):
        check_style("r1", "humaneval")


@pytest.mark.parametrize(
    "response, code",
    [
        ("<think>x</think><answer>\n```python\ndef f(): pass\n```\n</answer>", "def f(): pass"),
        ("```python\na = 1\n```\ntext\n```python\nb = 2\n```", "b = 2"),  # the last fence
        ("```\nc = 3\n```", "c = 3"),  # untagged
        ("<answer>no fence</answer> ```py\nd = 4\n```", "d = 4"),  # outside the answer block
        ("<think> thinking that never ends ```python\ne = 5", "e = 5"),  # cut at max tokens
        ("no code", None),
        ("```python\n\n```", None),
    ],
)
def test_extract_code(response: str, code: str | None) -> None:
    assert extract_code(response) == code


@pytest.mark.parametrize(
    "response, answer",
    [
        ("<think>..</think><answer>42</answer>", "42"),
        ("<answer>so \\boxed{\\frac{1}{2}} done</answer>", "\\frac{1}{2}"),
        ("it is \\boxed{3} or \\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("unclosed \\boxed{3", None),
        ("<answer>  </answer> but \\boxed{7}", "7"),
        ("nothing", None),
    ],
)
def test_extract_math_answer(response: str, answer: str | None) -> None:
    assert extract_math_answer(response) == answer
    assert last_boxed("\\fbox{x}") == "x"


def test_read_rows_formats_and_errors(tmp_path: Path) -> None:
    rows = [{"a": 1}, {"a": 2}]
    gz = tmp_path / "d.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(json.dumps(r) for r in rows) + "\n")
    listed = tmp_path / "d.json"
    listed.write_text(json.dumps(rows), encoding="utf-8")
    assert [r for _, r in read_rows(gz)] == rows and [r for _, r in read_rows(listed)] == rows
    assert read_rows(gz)[1][0].endswith("d.jsonl.gz:2")
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n[1]\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad\.jsonl:2: expected a JSON object, got list"):
        read_rows(tmp_path / "bad.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="no rows"):
        read_rows(tmp_path / "empty.jsonl")
    with pytest.raises(DatasetError, match="does not exist"):
        read_rows(tmp_path / "none.jsonl")


SOURCE = Source(what="toy", env_var="ABSOLUTEZERO_TOY", relative="toy/t.jsonl", hub="org/toy", hub_config="main")


def test_hub_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def load_dataset(name, *config, split):
        calls.append((name, config, split))
        return [{"a": 1}]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    assert SOURCE.rows("hf://")[0][1] == {"a": 1}
    SOURCE.rows("hf://other/set:cfg@validation")
    assert calls == [("org/toy", ("main",), "test"), ("other/set", ("cfg",), "validation")]
    SOURCE.check("hf://anything")  # hub paths are only checked when loading

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=offline))
    with pytest.raises(DatasetError, match="cannot load 'org/toy'.*ConnectionError.*network"):
        SOURCE.rows("hf://")
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(DatasetError, match=r"'datasets' package.*absolutezero\[hub\]"):
        SOURCE.rows("hf://")


def test_default_locations(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ABSOLUTEZERO_TOY", raising=False)
    monkeypatch.delenv("ABSOLUTEZERO_DATA", raising=False)
    repo = Path(__file__).resolve().parents[1]
    assert SOURCE.default_path() == (repo / ".." / "shared" / "data" / "toy" / "t.jsonl").resolve()
    assert repo not in SOURCE.default_path().parents  # the data is never inside the checkout
    packaged = tmp_path / "packaged.jsonl"
    packaged.write_text('{"a": 1}\n', encoding="utf-8")
    with_fallback = Source(what="toy", env_var="ABSOLUTEZERO_TOY", relative="toy/t.jsonl", fallback=lambda: packaged)
    assert with_fallback.default_path() == packaged
    with pytest.raises(DatasetError, match="the default toy file.*ABSOLUTEZERO_TOY.*toy/t.jsonl.*path=hf://"):
        SOURCE.check(None)
