"""MATH500 (math500.py): its data format, math-verified scoring, prompts, records."""

from __future__ import annotations

from pathlib import Path

import pytest

from _bench_helpers import check_default_source, check_missing_answer, run_math_set
from absolutezero_benchmarks.math500 import MATH500

ROWS = [{'problem': 'Convert the point to polar coordinates. (zz-one)',
  'solution': '...',
  'answer': '\\left( 3, \\frac{\\pi}{2} \\right)',
  'subject': 'Precalculus',
  'level': 2,
  'unique_id': 'test/precalculus/0.json'},
 {'problem': 'Simplify the fraction. (zz-two)',
  'solution': '...',
  'answer': '\\frac{1}{2}',
  'subject': 'Algebra',
  'level': 1,
  'unique_id': 'test/algebra/1.json'}]
RIGHT = {'zz-one': '(3, \\frac{\\pi}{2})', 'zz-two': '0.5'}
WRONG = {'zz-one': '(3, \\pi)', 'zz-two': '\\frac{1}{3}'}


def test_right_answers_score_and_wrong_ones_do_not(tmp_path: Path, math_checker) -> None:
    run_math_set(MATH500, ROWS, RIGHT, WRONG, tmp_path, math_checker)


def test_default_location_and_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_default_source(MATH500, monkeypatch, tmp_path, ROWS[0])


def test_rows_without_an_answer_are_a_clear_error(tmp_path: Path) -> None:
    check_missing_answer(MATH500, ROWS[0], tmp_path)
