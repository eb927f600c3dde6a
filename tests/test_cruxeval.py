"""CruxEval harness: data loading/validation, pass@k, reports, scoring through the sandbox."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import pytest

from absolutezero_benchmarks import dataset
from absolutezero_benchmarks.dataset import DatasetError, Problem, load_jsonl, load_problems, select
from absolutezero_benchmarks.passk import mean_pass_at_k, pass_at_k

ROWS = [
    {"id": "t0", "code": "def f(x):\n    return x * 2", "input": "3", "output": "6"},
    {"id": "t1", "code": "def f(s):\n    return s[::-1]", "input": "'abc'", "output": "'cba'"},
    {"id": "t2", "code": "def f(a, b):\n    return {b, a}", "input": "1, 2", "output": "{1, 2}"},
    {"id": "t3", "code": "def f(xs):\n    return sorted(xs)", "input": "[3, 1, 2]", "output": "[1, 2, 3]"},
    {"id": "t4", "code": "def f(d):\n    return len(d)", "input": "{'a': 1}", "output": "1"},
]


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture()
def small_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "small.jsonl", ROWS)


# ---------------------------------------------------------------- dataset loading


def test_load_jsonl_reads_rows_in_order(small_file: Path) -> None:
    problems = load_jsonl(small_file)
    assert [p.id for p in problems] == ["t0", "t1", "t2", "t3", "t4"]
    assert problems[1] == Problem(id="t1", code=ROWS[1]["code"], input="'abc'", output="'cba'")


def test_blank_lines_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n   \n" + json.dumps(ROWS[1]) + "\n", encoding="utf-8")
    assert [p.id for p in load_jsonl(path)] == ["t0", "t1"]


def test_missing_file_names_the_path_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(DatasetError, match="nope.jsonl.*does not exist.*path="):
        load_jsonl(missing)


def test_bad_json_line_reports_the_line_number(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps(ROWS[1]) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad\.jsonl:3: invalid JSON"):
        load_jsonl(path)


def test_missing_keys_are_named(tmp_path: Path) -> None:
    row = {"id": "x", "code": "def f(a):\n    return a"}
    path = write_jsonl(tmp_path / "keys.jsonl", [ROWS[0], row])
    with pytest.raises(DatasetError, match=r"keys\.jsonl:2: missing key\(s\) 'input', 'output'"):
        load_jsonl(path)


@pytest.mark.parametrize(
    "row, message",
    [
        ({**ROWS[0], "input": 3}, "'input' must be a string"),
        ([1, 2], "expected a JSON object, got list"),
        ({**ROWS[0], "code": "  "}, "'code' is empty"),
    ],
)
def test_malformed_rows_are_rejected(tmp_path: Path, row: object, message: str) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [row])
    with pytest.raises(DatasetError, match=message):
        load_jsonl(path)


def test_duplicate_ids_and_empty_files_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="duplicate problem id 't0'"):
        load_jsonl(write_jsonl(tmp_path / "dup.jsonl", [ROWS[0], ROWS[0]]))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="no problems"):
        load_jsonl(empty)


def test_default_path_honours_the_environment_variable(
    small_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(dataset.ENV_VAR, str(small_file))
    assert dataset.default_path() == small_file
    assert [p.id for p in load_problems(None)] == [r["id"] for r in ROWS]


def test_default_path_is_outside_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(dataset.ENV_VAR, raising=False)
    repo = Path(__file__).resolve().parents[1]
    path = dataset.default_path()
    assert path == (repo / ".." / "shared" / "data" / "cruxeval" / "cruxeval.jsonl").resolve()
    assert repo not in path.parents  # the data is never copied into the checkout


def test_hub_loading_without_datasets_is_a_clear_error() -> None:
    # run in a fresh interpreter where importing `datasets` fails (not installed, or
    # blocked here when it is) so the test does not depend on the machine's packages
    code = (
        "import sys; sys.modules['datasets'] = None\n"
        "from absolutezero_benchmarks.dataset import load_problems, DatasetError\n"
        "try:\n    load_problems('hf://cruxeval-org/cruxeval')\n"
        "except DatasetError as e:\n    print('ERR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "ERR" in out.stdout and "'datasets' package" in out.stdout and "absolutezero[hub]" in out.stdout


def test_hub_loading_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("could not reach huggingface.co")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=offline))
    with pytest.raises(DatasetError, match="cannot load 'cruxeval-org/cruxeval'.*ConnectionError.*network"):
        load_problems("hf://")


def test_hub_rows_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    rows = [ROWS[0], {"id": "broken", "code": "def f(): pass"}]
    fake = types.SimpleNamespace(load_dataset=lambda name, split, revision: rows)
    monkeypatch.setitem(sys.modules, "datasets", fake)
    with pytest.raises(DatasetError, match=r"row 1: missing key\(s\) 'input', 'output'"):
        load_problems("hf://cruxeval-org/cruxeval@test")


def test_select_first_n_and_seeded_subsets(small_file: Path) -> None:
    problems = load_jsonl(small_file)
    assert [p.id for p in select(problems, 2)] == ["t0", "t1"]
    assert select(problems, None) == problems
    assert select(problems, 99) == problems
    a = select(problems, 3, seed=7)
    b = select(problems, 3, seed=7)
    assert a == b and len(a) == 3 and len({p.id for p in a}) == 3
    assert [p.id for p in a] == sorted(p.id for p in a)  # dataset order is kept
    subsets = {tuple(p.id for p in select(problems, 3, seed=s)) for s in range(20)}
    assert len(subsets) > 1  # the seed matters
    with pytest.raises(ValueError, match="limit must be a positive integer"):
        select(problems, 0)


# ---------------------------------------------------------------- pass@k


def brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """Share of k-subsets of n samples (c correct) that contain a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n, c, k", [(5, 0, 1), (5, 2, 1), (5, 2, 2), (6, 3, 3), (10, 1, 5), (4, 4, 2), (7, 5, 3)])
def test_pass_at_k_matches_counting_subsets(n: int, c: int, k: int) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_k_hand_computed_values() -> None:
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the success rate
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(3, 2, 2) == 1.0  # only one wrong sample: every pair has a correct one
    assert pass_at_k(3, 0, 2) == 0.0


def test_pass_at_k_is_stable_for_large_n() -> None:
    value = pass_at_k(2000, 1, 1000)  # C(2000, 1000) overflows a float
    assert value == pytest.approx(0.5)
    assert math.isfinite(pass_at_k(5000, 17, 100))


def test_pass_at_k_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least k=5 samples"):
        pass_at_k(3, 1, 5)
    with pytest.raises(ValueError, match=r"in \[0, n=3\]"):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError, match="k must be >= 1"):
        pass_at_k(3, 1, 0)
    with pytest.raises(TypeError, match="integer"):
        pass_at_k(3.0, 1, 1)  # type: ignore[arg-type]


def test_mean_pass_at_k() -> None:
    assert mean_pass_at_k([0, 2, 4], 4, 1) == pytest.approx((0 + 0.5 + 1) / 3)
    assert math.isnan(mean_pass_at_k([], 4, 1))
