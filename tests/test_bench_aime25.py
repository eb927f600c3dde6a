"""AIME25 (aime25.py): its data format, math-verified scoring, prompts, records."""

from __future__ import annotations

from pathlib import Path

import pytest

from _bench_helpers import check_default_source, math_verify_or_skip, run_math_set, write_jsonl
from absolutezero_benchmarks.dataset import DatasetError
from absolutezero_benchmarks.aime25 import AIME25

ROWS = [{'id': '0', 'problem': 'Find the sum of all bases b. (zz-one)', 'answer': '70', 'url': 'u', 'year': '2025'},
 {'id': '1', 'problem': 'Find the area. (zz-two)', 'answer': 588}]
RIGHT = {'zz-one': '70', 'zz-two': '588'}
WRONG = {'zz-one': '71', 'zz-two': '589'}


@pytest.fixture(scope="module")
def checker():
    math_verify_or_skip()
    from absolutezero_benchmarks.mathcheck import MathChecker

    instance = MathChecker()
    yield instance
    instance.close()


def test_right_answers_score_and_wrong_ones_do_not(tmp_path: Path, checker) -> None:
    run_math_set(AIME25, ROWS, RIGHT, WRONG, tmp_path, checker)


def test_default_location_and_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_default_source(AIME25, monkeypatch, tmp_path, ROWS[0])


def test_rows_without_an_answer_are_a_clear_error(tmp_path: Path) -> None:
    bad = {key: value for key, value in ROWS[0].items() if key not in AIME25.answer_keys}
    with pytest.raises(DatasetError, match=":1: no answer"):
        AIME25(path=write_jsonl(tmp_path / "bad.jsonl", [bad]), checker=object()).load()  # type: ignore[arg-type]
