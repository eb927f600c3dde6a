"""The script and query policies (authorizer, allow-list), run in-process on one job.

These call :func:`absolutezero_sql.jobs.run_job` directly: fast, and enough to see what
SQLite's authorizer allows. Resource bombs run through the real sandbox in
test_sql_hostile.py.
"""

from __future__ import annotations

import sqlite3

import pytest
from _sql_helpers import PEOPLE, in_process

from absolutezero_sql.policy import ALLOWED_FUNCTIONS, DENIED_FUNCTIONS

TABLE = "CREATE TABLE t (a INTEGER, b TEXT);\nINSERT INTO t VALUES (1, 'x'), (2, 'y'), (2, 'z');"


@pytest.mark.parametrize(
    "query",
    [
        "SELECT a, b FROM t ORDER BY a, b",
        "SELECT b, a * 1.5, typeof(a), a / 2, a % 2, -a, NULL FROM t",
        "SELECT a, COUNT(*), SUM(a), AVG(a), MIN(b), MAX(b), total(a) FROM t GROUP BY a HAVING COUNT(*) >= 1",
        "SELECT x.b, y.b FROM t x JOIN t y ON x.a = y.a AND x.b < y.b",
        "SELECT b, row_number() OVER (ORDER BY b), rank() OVER (PARTITION BY a ORDER BY b), lag(b) OVER (ORDER BY b) FROM t",
        "WITH big AS (SELECT * FROM t WHERE a > 1) SELECT b FROM big WHERE b IN (SELECT b FROM t WHERE b <> 'y')",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT i FROM n",
        "SELECT upper(b) || '!', length(b), substr(b, 1, 1), replace(b, 'x', 'w'), printf('%05d', a), hex(b), quote(b) FROM t",
        "SELECT CASE WHEN a > 1 THEN 'big' ELSE 'small' END, coalesce(NULL, b), iif(a = 1, 1, 0), b LIKE 'x%', b GLOB 'y' FROM t",
        "SELECT X'0aff', 1e3, 'it''s', round(2.567, 1), abs(-3), CAST('7' AS INTEGER)",
        "SELECT DISTINCT a FROM t EXCEPT SELECT 2",
    ],
)
def test_benign_queries_return_what_plain_sqlite3_returns(query):
    result = in_process(TABLE, query)
    assert result["ok"], result
    plain = sqlite3.connect(":memory:")
    plain.executescript(TABLE)
    expected = plain.execute(query).fetchall()
    got = [tuple(None if tag == "n" else bytes.fromhex(v) if tag == "b" else v for tag, v in row) for row in result["rows"]]
    assert sorted(map(repr, got)) == sorted(map(repr, expected))


@pytest.mark.parametrize(
    "query, reason",
    [
        ("DELETE FROM t", "read-only SELECT, not DELETE"),
        ("UPDATE t SET a = 0", "read-only SELECT, not UPDATE"),
        ("INSERT INTO t VALUES (9, 'q')", "read-only SELECT, not INSERT"),
        ("DROP TABLE t", "read-only SELECT"),
        ("CREATE TABLE u (a)", "read-only SELECT"),
        ("CREATE VIEW v AS SELECT 1", "read-only SELECT"),
        ("ATTACH DATABASE '/tmp/evil.db' AS evil", "not ATTACH"),
        ("ATTACH 'file:/etc/passwd?mode=ro' AS p", "not ATTACH"),
        ("PRAGMA table_info(t)", "not PRAGMA"),
        ("PRAGMA writable_schema = 1", "not PRAGMA"),
        ("VACUUM INTO '/tmp/copy.db'", "read-only SELECT"),
        ("BEGIN", "read-only SELECT"),
        ("SELECT * FROM sqlite_master", "only the database's own tables"),
        ("SELECT * FROM sqlite_schema", "only the database's own tables"),
        ("SELECT 1; DELETE FROM t", "exactly one SQL statement"),
        ("SELECT random()", "random() is not allowed: it is random"),
        ("SELECT randomblob(4)", "randomblob() is not allowed"),
        ("SELECT date('now')", "date() is not allowed: it depends on the clock"),
        ("SELECT datetime('2020-01-01', 'localtime')", "datetime() is not allowed"),
        ("SELECT CURRENT_TIMESTAMP", "current_timestamp() is not allowed"),
        ("SELECT changes()", "changes() is not allowed"),
        ("SELECT last_insert_rowid()", "last_insert_rowid() is not allowed"),
        ("SELECT sqlite_version()", "sqlite_version() is not allowed: it depends on the SQLite build"),
        ("SELECT load_extension('/tmp/x.so')", "load_extension() is not allowed"),
        ("SELECT readfile('/etc/passwd')", "no such function"),
        ("SELECT * FROM pragma_table_info('t')", "read-only SELECT"),
        ("SELECT * FROM generate_series(1, 10)", ""),
        ("SELECT ?", ""),
    ],
)
def test_hostile_or_nondeterministic_queries_are_rejected(query, reason):
    result = in_process(TABLE, query)
    assert not result["ok"]
    assert result["reason"]
    assert reason in result["reason"]


@pytest.mark.parametrize(
    "script, reason",
    [
        (TABLE + "CREATE VIEW v AS SELECT * FROM t;", "uses SELECT"),
        (TABLE + "CREATE TRIGGER g AFTER INSERT ON t BEGIN DELETE FROM t; END;", "may only CREATE TABLE"),
        (TABLE + "CREATE INDEX i ON t (a);", "may only CREATE TABLE"),
        (TABLE + "CREATE VIRTUAL TABLE f USING fts5(x);", "may only CREATE TABLE"),
        (TABLE + "INSERT INTO t SELECT * FROM t;", "uses SELECT"),
        ("CREATE TABLE u AS SELECT 1 AS a;", "uses SELECT"),
        (TABLE + "WITH x AS (VALUES (1)) INSERT INTO t SELECT 1, 'w' FROM x;", "uses SELECT/WITH"),
        (TABLE + "INSERT INTO t VALUES (abs(-4), 'w');", "calls abs()"),
        (TABLE + "INSERT INTO t VALUES (random(), 'w');", "calls random()"),
        (TABLE + "UPDATE t SET a = 5;", "may only CREATE TABLE"),
        (TABLE + "DELETE FROM t;", "may only CREATE TABLE"),
        ("PRAGMA writable_schema = ON;", "not PRAGMA"),
        ("ATTACH DATABASE '/tmp/evil.db' AS evil;", "not ATTACH"),
        ("CREATE TABLE q (a DEFAULT (random()));", "non-literal DEFAULT"),
        ("CREATE TABLE q (a TEXT DEFAULT CURRENT_TIMESTAMP);", "non-literal DEFAULT"),
        ("CREATE TABLE q (a INTEGER, b AS (a * 2));", "generated column"),
        ("CREATE TABLE sqlite_evil (a);", "reserved"),
        ("BEGIN; CREATE TABLE q (a);", "may only CREATE TABLE"),
        ("", "creates no table"),
        ("CREATE TABLE a (x);CREATE TABLE b (x);CREATE TABLE c (x);CREATE TABLE d (x);CREATE TABLE e (x);CREATE TABLE f (x);", "6 tables"),
        ("CREATE TABLE q (a);INSERT INTO q VALUES " + ", ".join(f"({i})" for i in range(31)) + ";", "31 rows"),
        ("CREATE TABLE q (a; nonsense", "OperationalError"),
    ],
)
def test_database_scripts_outside_the_policy_are_rejected(script, reason):
    result = in_process(script, "SELECT 1")
    assert not result["ok"] and result["stage"] == "database"
    assert result["reason"] and reason in result["reason"]


def test_literal_defaults_and_constraints_are_fine():
    script = "CREATE TABLE q (a INTEGER PRIMARY KEY, b TEXT DEFAULT 'x', c REAL DEFAULT -1.5 NOT NULL, UNIQUE (b));INSERT INTO q (a) VALUES (1);"
    assert in_process(script, "SELECT * FROM q")["rows"] == [[["i", 1], ["t", "x"], ["r", -1.5]]]


def test_allow_list_and_deny_list_are_disjoint():
    assert not (ALLOWED_FUNCTIONS & set(DENIED_FUNCTIONS))


def test_people_seed_database_builds():
    result = in_process(PEOPLE, "SELECT name FROM people ORDER BY age")
    assert [row[0][1] for row in result["rows"]] == ["Bob", "Ann", "Dee", "Cid"]
