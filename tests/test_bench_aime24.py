"""AIME24 (aime24.py): its data format, math-verified scoring, prompts, records."""

from __future__ import annotations

from pathlib import Path

import pytest

from _bench_helpers import check_default_source, check_missing_answer, run_math_set
from absolutezero_benchmarks.aime24 import AIME24

ROWS = [{'id': 60,
  'problem': 'Find the number of ordered pairs. (zz-one)',
  'solution': '...',
  'answer': '204',
  'url': 'u',
  'year': '2024'},
 {'id': 61,
  'problem': 'Let n be the least integer. (zz-two)',
  'solution': '...',
  'answer': '23',
  'url': 'u',
  'year': '2024'}]
RIGHT = {'zz-one': '204', 'zz-two': '\\boxed{23}'}
WRONG = {'zz-one': '205', 'zz-two': '32'}


def test_right_answers_score_and_wrong_ones_do_not(tmp_path: Path, math_checker) -> None:
    run_math_set(AIME24, ROWS, RIGHT, WRONG, tmp_path, math_checker)


def test_default_location_and_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_default_source(AIME24, monkeypatch, tmp_path, ROWS[0])


def test_rows_without_an_answer_are_a_clear_error(tmp_path: Path) -> None:
    check_missing_answer(AIME24, ROWS[0], tmp_path)
