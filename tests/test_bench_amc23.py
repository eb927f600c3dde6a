"""AMC23 (amc23.py): its data format, math-verified scoring, prompts, records."""

from __future__ import annotations

from pathlib import Path

import pytest

from _bench_helpers import check_default_source, math_verify_or_skip, run_math_set, write_jsonl
from absolutezero_benchmarks.dataset import DatasetError
from absolutezero_benchmarks.amc23 import AMC23

ROWS = [{'id': 0, 'question': 'How many miles from City A? (zz-one)', 'answer': 27.0, 'url': 'u'},
 {'id': 1, 'question': 'What is x + y? (zz-two)', 'answer': 36.0, 'url': 'u'}]
RIGHT = {'zz-one': '27', 'zz-two': '36'}
WRONG = {'zz-one': '28', 'zz-two': '6'}


@pytest.fixture(scope="module")
def checker():
    math_verify_or_skip()
    from absolutezero_benchmarks.mathcheck import MathChecker

    instance = MathChecker()
    yield instance
    instance.close()


def test_right_answers_score_and_wrong_ones_do_not(tmp_path: Path, checker) -> None:
    run_math_set(AMC23, ROWS, RIGHT, WRONG, tmp_path, checker)


def test_default_location_and_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_default_source(AMC23, monkeypatch, tmp_path, ROWS[0])


def test_rows_without_an_answer_are_a_clear_error(tmp_path: Path) -> None:
    bad = {key: value for key, value in ROWS[0].items() if key not in AMC23.answer_keys}
    with pytest.raises(DatasetError, match=":1: no answer"):
        AMC23(path=write_jsonl(tmp_path / "bad.jsonl", [bad]), checker=object()).load()  # type: ignore[arg-type]
