"""AMC23 (amc23.py): its data format, math-verified scoring, prompts, records."""

from __future__ import annotations

from pathlib import Path

import pytest

from _bench_helpers import check_default_source, check_missing_answer, run_math_set
from absolutezero_benchmarks.amc23 import AMC23

ROWS = [{'id': 0, 'question': 'How many miles from City A? (zz-one)', 'answer': 27.0, 'url': 'u'},
 {'id': 1, 'question': 'What is x + y? (zz-two)', 'answer': 36.0, 'url': 'u'}]
RIGHT = {'zz-one': '27', 'zz-two': '36'}
WRONG = {'zz-one': '28', 'zz-two': '6'}


def test_right_answers_score_and_wrong_ones_do_not(tmp_path: Path, math_checker) -> None:
    run_math_set(AMC23, ROWS, RIGHT, WRONG, tmp_path, math_checker)


def test_default_location_and_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_default_source(AMC23, monkeypatch, tmp_path, ROWS[0])


def test_rows_without_an_answer_are_a_clear_error(tmp_path: Path) -> None:
    check_missing_answer(AMC23, ROWS[0], tmp_path)
