"""GSM8K (gsm8k.py): its data format, math-verified scoring, prompts, records."""

from __future__ import annotations

from pathlib import Path

import pytest

from _bench_helpers import check_default_source, check_missing_answer, run_math_set, write_jsonl
from absolutezero_benchmarks.dataset import DatasetError
from absolutezero_benchmarks.gsm8k import GSM8K

ROWS = [{'question': 'How many eggs are sold? (zz-one)',
  'answer': 'She sells 16 - 3 - 4 = <<16-3-4=9>>9 eggs.\n#### 9'},
 {'question': 'How much does he pay? (zz-two)', 'answer': 'The total is 1000 dollars.\n#### 1,000'}]
RIGHT = {'zz-one': '9', 'zz-two': '1,000'}
WRONG = {'zz-one': '18', 'zz-two': '100'}


def test_right_answers_score_and_wrong_ones_do_not(tmp_path: Path, math_checker) -> None:
    run_math_set(GSM8K, ROWS, RIGHT, WRONG, tmp_path, math_checker)


def test_default_location_and_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_default_source(GSM8K, monkeypatch, tmp_path, ROWS[0])


def test_rows_without_an_answer_are_a_clear_error(tmp_path: Path) -> None:
    check_missing_answer(GSM8K, ROWS[0], tmp_path)


def test_the_gold_answer_is_the_number_after_the_marker(tmp_path: Path) -> None:
    problems = GSM8K(path=write_jsonl(tmp_path / "g.jsonl", ROWS), checker=object()).load()  # type: ignore[arg-type]
    assert [p.answer for p in problems] == ["9", "1000"]
    with pytest.raises(DatasetError, match="nothing after '####'"):
        GSM8K(path=write_jsonl(tmp_path / "bad.jsonl", [{"question": "q", "answer": "text ####"}]), checker=object()).load()  # type: ignore[arg-type]
