"""Result text: formatting, parsing, type-aware list/multiset comparison."""

from __future__ import annotations

import pytest

from absolutezero_sql.values import ResultFormatError, decode_rows, format_rows, parse_rows, same_result


def test_round_trip_of_every_storage_class():
    rows = [(("i", 1), ("r", 2.5), ("t", "it's"), ("b", "0aff"), ("n", None)), (("i", -3), ("r", 1e20), ("t", ""), ("b", ""), ("n", None))]
    text = format_rows(rows)
    assert text.splitlines()[0] == "(1, 2.5, 'it''s', X'0AFF', NULL)"
    assert parse_rows(text) == rows


def test_types_are_distinguished():
    assert not same_result(parse_rows("(1)"), parse_rows("(1.0)"), ordered=True)
    assert not same_result(parse_rows("(1)"), parse_rows("('1')"), ordered=True)
    assert not same_result(parse_rows("(NULL)"), parse_rows("('NULL')"), ordered=True)
    assert same_result(parse_rows("(1.50)"), parse_rows("(1.5)"), ordered=True)


def test_list_versus_multiset():
    a, b = parse_rows("(1)\n(2)\n(2)"), parse_rows("(2)\n(1)\n(2)")
    assert same_result(a, b, ordered=False)
    assert not same_result(a, b, ordered=True)
    assert not same_result(a, parse_rows("(1)\n(2)"), ordered=False)


def test_reals_are_always_written_as_reals():
    assert format_rows([(("r", 3.0),)]) == "(3.0)"
    assert parse_rows(format_rows([(("r", 3.0),)])) == [(("r", 3.0),)]


@pytest.mark.parametrize(
    "text",
    ["1, 2", "(1, 2", "(1,)", "(1) junk", "(x)", "(X'abc')", "(1)\n(1, 2)", "(1e999)", "((1))", "('unterminated)"],
)
def test_malformed_results_are_rejected(text):
    with pytest.raises(ResultFormatError):
        parse_rows(text)


def test_row_cap():
    with pytest.raises(ResultFormatError, match="more than 3 rows"):
        parse_rows("(1)\n" * 4, max_rows=3)


def test_empty_text_is_no_rows_and_decode_checks_tags():
    assert parse_rows("  \n") == []
    assert decode_rows([[["i", 1], ["r", 2]]]) == [(("i", 1), ("r", 2.0))]
    with pytest.raises(ValueError):
        decode_rows([[["x", 1]]])
