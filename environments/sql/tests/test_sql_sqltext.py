"""The tokenizer's two jobs: top-level ORDER BY and keywords of a script."""

from __future__ import annotations

import pytest

from absolutezero_sql.sqltext import has_top_level_order_by, script_keywords


@pytest.mark.parametrize(
    "query, expected",
    [
        ("SELECT a FROM t ORDER BY a", True),
        ("select a from t order   by a desc", True),
        ("SELECT a FROM t UNION SELECT b FROM u ORDER BY 1", True),
        ("SELECT * FROM (SELECT a FROM t ORDER BY a)", False),
        ("WITH x AS (SELECT a FROM t ORDER BY a) SELECT a FROM x", False),
        ("SELECT row_number() OVER (ORDER BY a) FROM t", False),
        ("SELECT 'ORDER BY' FROM t", False),
        ("SELECT a FROM t -- ORDER BY a", False),
        ('SELECT "order" FROM t /* ORDER BY */', False),
    ],
)
def test_top_level_order_by(query, expected):
    assert has_top_level_order_by(query) is expected


def test_script_keywords_skip_strings_and_quoted_names():
    words = script_keywords("CREATE TABLE \"select\" (a TEXT); INSERT INTO \"select\" VALUES ('WITH SELECT'); -- SELECT")
    assert "SELECT" not in words and "WITH" not in words
    assert {"CREATE", "TABLE", "INSERT", "INTO", "VALUES"} <= words
    assert "SELECT" in script_keywords("INSERT INTO t SELECT 1")


def test_single_table_and_row_skeleton():
    from absolutezero_sql.sqltext import row_skeleton, single_table

    assert single_table(["CREATE TABLE people (a)"]) == "people"
    assert single_table(['create table "my t"(a)']) == '"my t"'
    assert single_table(["CREATE TABLE a (x)", "CREATE TABLE b (x)"]) is None
    assert row_skeleton("CREATE TABLE p (name TEXT, age INTEGER, score REAL)") == "('<text>', <integer>, <real>)"
    assert row_skeleton("CREATE TABLE x (id INTEGER PRIMARY KEY, v DECIMAL(10, 2), PRIMARY KEY (id), CHECK (v > 0))") == "(<integer>, <value>)"
    assert row_skeleton("nonsense") is None
