"""AIME25 (aime25.py): its data format, math-verified scoring, prompts, records."""

from __future__ import annotations

from pathlib import Path

import pytest

from _bench_helpers import check_default_source, check_missing_answer, run_math_set
from absolutezero_benchmarks.aime25 import AIME25

ROWS = [{'id': '0', 'problem': 'Find the sum of all bases b. (zz-one)', 'answer': '70', 'url': 'u', 'year': '2025'},
 {'id': '1', 'problem': 'Find the area. (zz-two)', 'answer': 588}]
RIGHT = {'zz-one': '70', 'zz-two': '588'}
WRONG = {'zz-one': '71', 'zz-two': '589'}


def test_right_answers_score_and_wrong_ones_do_not(tmp_path: Path, math_checker) -> None:
    run_math_set(AIME25, ROWS, RIGHT, WRONG, tmp_path, math_checker)


def test_default_location_and_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_default_source(AIME25, monkeypatch, tmp_path, ROWS[0])


def test_rows_without_an_answer_are_a_clear_error(tmp_path: Path) -> None:
    check_missing_answer(AIME25, ROWS[0], tmp_path)
