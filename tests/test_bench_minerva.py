"""Minerva (minerva.py): its data format, math-verified scoring, prompts, records."""

from __future__ import annotations

from pathlib import Path

import pytest

from _bench_helpers import check_default_source, check_missing_answer, run_math_set
from absolutezero_benchmarks.minerva import Minerva

ROWS = [{'question': 'Compute the speed in m/s. (zz-one)', 'answer': '7.5'},
 {'question': 'Give the exponent. (zz-two)', 'answer': '-3'}]
RIGHT = {'zz-one': '7.5', 'zz-two': '-3'}
WRONG = {'zz-one': '7.4', 'zz-two': '3'}


def test_right_answers_score_and_wrong_ones_do_not(tmp_path: Path, math_checker) -> None:
    run_math_set(Minerva, ROWS, RIGHT, WRONG, tmp_path, math_checker)


def test_default_location_and_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_default_source(Minerva, monkeypatch, tmp_path, ROWS[0])


def test_rows_without_an_answer_are_a_clear_error(tmp_path: Path) -> None:
    check_missing_answer(Minerva, ROWS[0], tmp_path)
