"""One sandbox job: build a database from a script, run a query, encode the rows.

Runs inside a freshly forked child of a sandbox worker (see :mod:`.worker`), on a fresh
in-memory database, so no job can leave state behind for the next one. A job is JSON::

    {"script": "CREATE TABLE ...; INSERT ...", "query": "SELECT ..." or null,
     "variants": true/false}

and so is its result: ``{"ok": true, "rows": [...], "variants": [[...], ...],
"schema": [...], "columns": [...]}`` or ``{"ok": false, "stage": "database" | "query" |
"result", "reason": "..."}``. Every limit that is hit is a rejection with its reason,
never a truncated result.

``variants``: the query also runs on two re-orderings of the same data (the tables
refilled in reverse order, and SQLite's ``reverse_unordered_selects``), so the caller
can reject a result that depends on an order SQL leaves unspecified (LIMIT without a
tie-breaking ORDER BY, ``group_concat`` over unordered rows, ...).
"""

from __future__ import annotations

import math
import sqlite3
import time
from typing import Any

from .policy import Limits, Policy, open_connection
from .sqltext import script_keywords
from .values import ResultFormatError, format_rows, parse_rows

__all__ = ["run_job"]


class _Rejected(Exception):
    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(reason)
        self.stage = stage
        self.reason = reason


class _Budget:
    """Progress handler: stops a statement past its VM-step or wall-clock budget."""

    EVERY = 1000

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.steps = 0
        self.deadline = time.monotonic() + limits.timeout
        self.exceeded = ""

    def __call__(self) -> int:
        self.steps += self.EVERY
        if self.steps > self.limits.max_vm_steps:
            self.exceeded = f"ran more than {self.limits.max_vm_steps} SQLite steps (runaway recursion or join?)"
            return 1
        if time.monotonic() > self.deadline:
            self.exceeded = f"ran longer than {self.limits.timeout:g} s"
            return 1
        return 0


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _explain(error: BaseException, policy: Policy, budget: _Budget, limits: Limits) -> str:
    if policy.denied:
        return policy.denied
    if budget.exceeded:
        return budget.exceeded
    text = str(error)
    if isinstance(error, MemoryError) or "out of memory" in text:
        return f"ran out of memory (limit {limits.memory_mb} MB)"
    if "too big" in text:
        return f"a value grew beyond {limits.max_value_bytes} bytes"
    if "one statement at a time" in text:
        return "the query must be exactly one SQL statement"
    if "interrupted" in text:
        return f"ran longer than {limits.timeout:g} s"
    return f"{type(error).__name__}: {text}"


def _build(script: str, limits: Limits, budget: _Budget) -> tuple[sqlite3.Connection, list[str]]:
    reading = script_keywords(script) & {"SELECT", "WITH"}
    if reading:
        raise _Rejected("database", f"the database script uses {'/'.join(sorted(reading))}: insert literal VALUES rows only")
    connection = open_connection(limits)
    connection.set_progress_handler(budget, _Budget.EVERY)
    policy = Policy("script")
    connection.set_authorizer(policy)
    try:
        connection.executescript(script)
    except (sqlite3.Error, MemoryError, ValueError, OverflowError) as error:
        raise _Rejected("database", _explain(error, policy, budget, limits)) from None
    connection.set_authorizer(None)
    if connection.in_transaction:
        raise _Rejected("database", "the database script leaves a transaction open")
    objects = connection.execute("SELECT type, name, sql FROM sqlite_master ORDER BY rowid").fetchall()
    # SQLite's own objects: UNIQUE/PRIMARY KEY autoindexes, AUTOINCREMENT's sqlite_sequence
    objects = [o for o in objects if not (o[0] == "index" and o[2] is None) and not str(o[1]).startswith("sqlite_")]
    others = [f"{kind} {name}" for kind, name, _ in objects if kind != "table"]
    if others:
        raise _Rejected("database", f"the database script may only create tables, not {', '.join(others)}")
    tables = [(name, sql) for _, name, sql in objects]
    if not tables:
        raise _Rejected("database", "the database script creates no table")
    if len(tables) > limits.max_tables:
        raise _Rejected("database", f"{len(tables)} tables, more than the limit of {limits.max_tables}")
    total = 0
    for name, _ in tables:
        for column in connection.execute(f"PRAGMA table_xinfo({_quote(name)})").fetchall():
            if column[6] in (2, 3):
                raise _Rejected("database", f"generated column {column[1]!r} in table {name!r}: store literal values only")
            if column[4] is not None and not _is_literal(str(column[4])):
                raise _Rejected("database", f"column {column[1]!r} of table {name!r} has a non-literal DEFAULT {column[4]}")
        total += connection.execute(f"SELECT count(*) FROM {_quote(name)}").fetchone()[0]
    if total > limits.max_rows:
        raise _Rejected("database", f"{total} rows in all, more than the limit of {limits.max_rows}")
    return connection, [sql for _, sql in tables]


def _is_literal(text: str) -> bool:
    """A DEFAULT that is one literal (number, 'text', X'blob', NULL, TRUE/FALSE)."""
    if text.strip().upper() in ("NULL", "TRUE", "FALSE"):
        return True
    try:
        return len(parse_rows(f"({text.strip().strip('()') if text.strip().startswith('(') else text})")) == 1
    except ResultFormatError:
        return False


def _encode(value: Any) -> list[Any]:
    if value is None:
        return ["n", None]
    if isinstance(value, int):
        return ["i", value]
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Rejected("result", f"the result holds a non-finite REAL ({value!r})")
        return ["r", value]
    if isinstance(value, str):
        return ["t", value]
    if isinstance(value, bytes):
        return ["b", value.hex()]
    raise _Rejected("result", f"unexpected value type {type(value).__name__}")


def _query(connection: sqlite3.Connection, query: str, limits: Limits, budget: _Budget) -> tuple[list[list[Any]], list[str]]:
    policy = Policy("query")
    connection.set_authorizer(policy)
    try:
        cursor = connection.execute(query)
        if cursor.description is None:
            raise _Rejected("query", "the query returns no columns (not a SELECT)")
        raw = cursor.fetchmany(limits.max_result_rows + 1)
        columns = [str(d[0]) for d in cursor.description]
        cursor.close()
    except _Rejected:
        raise
    except (sqlite3.Error, MemoryError, ValueError, OverflowError) as error:
        raise _Rejected("query", _explain(error, policy, budget, limits)) from None
    finally:
        connection.set_authorizer(None)
    if len(raw) > limits.max_result_rows:
        raise _Rejected("result", f"the query returns more than {limits.max_result_rows} rows")
    rows = [[_encode(v) for v in row] for row in raw]
    size = len(format_rows([tuple(tuple(v) for v in row) for row in rows]))
    if size > limits.max_result_chars:
        raise _Rejected("result", f"the result is {size} characters long, more than the limit of {limits.max_result_chars}")
    return rows, columns


def _reordered_copy(
    connection: sqlite3.Connection, schema: list[str], limits: Limits, budget: _Budget, order: str
) -> sqlite3.Connection:
    """The same tables and rows, each table filled in another order (``reverse`` or ``rotate``)."""
    copy = open_connection(limits)
    copy.set_progress_handler(budget, _Budget.EVERY)
    for sql in schema:
        copy.execute(sql)
    for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid"):
        rows = connection.execute(f"SELECT * FROM {_quote(name)}").fetchall()
        if rows:
            half = len(rows) // 2
            rows = list(reversed(rows)) if order == "reverse" else rows[half:] + rows[:half]
            marks = ", ".join("?" * len(rows[0]))
            copy.executemany(f"INSERT INTO {_quote(name)} VALUES ({marks})", rows)
    return copy


def run_job(job: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """Run one job (see the module docstring) and return its JSON-able result."""
    budget = _Budget(limits)
    try:
        connection, schema = _build(str(job["script"]), limits, budget)
        result: dict[str, Any] = {"ok": True, "schema": schema}
        query = job.get("query")
        if query is None:
            return result
        rows, columns = _query(connection, str(query), limits, budget)
        result.update(rows=rows, columns=columns)
        if job.get("variants"):
            variants = []
            for order in ("reverse", "rotate"):
                copy = _reordered_copy(connection, schema, limits, budget, order)
                variants.append(_query(copy, str(query), limits, budget)[0])
                copy.close()
            connection.execute("PRAGMA reverse_unordered_selects = ON")
            variants.append(_query(connection, str(query), limits, budget)[0])
            result["variants"] = variants
        return result
    except _Rejected as rejected:
        return {"ok": False, "stage": rejected.stage, "reason": rejected.reason}
    except sqlite3.Error as error:  # the validator's own statements failed: a budget ran out
        return {"ok": False, "stage": "database", "reason": budget.exceeded or f"{type(error).__name__}: {error}"}
