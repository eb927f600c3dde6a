"""OlympiadBench (olympiadbench.py): its data format, math-verified scoring, prompts, records."""

from __future__ import annotations

from pathlib import Path

import pytest

from _bench_helpers import check_default_source, check_missing_answer, run_math_set
from absolutezero_benchmarks.olympiadbench import OlympiadBench

ROWS = [{'id': 1606,
  'question': 'Determine the smallest value. (zz-one)',
  'final_answer': ['$\\frac{1}{2}$'],
  'solution': ['...']},
 {'id': 1607, 'question': 'Find all integers n. (zz-two)', 'final_answer': ['$5$'], 'solution': ['...']}]
RIGHT = {'zz-one': '\\frac12', 'zz-two': '5'}
WRONG = {'zz-one': '2', 'zz-two': '4'}


def test_right_answers_score_and_wrong_ones_do_not(tmp_path: Path, math_checker) -> None:
    run_math_set(OlympiadBench, ROWS, RIGHT, WRONG, tmp_path, math_checker)


def test_default_location_and_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_default_source(OlympiadBench, monkeypatch, tmp_path, ROWS[0])


def test_rows_without_an_answer_are_a_clear_error(tmp_path: Path) -> None:
    check_missing_answer(OlympiadBench, ROWS[0], tmp_path)
