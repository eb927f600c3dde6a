"""What model-written SQL may do, enforced by SQLite itself (authorizer, limits).

Why the authorizer and not string matching: SQLite calls it for every action while it
*compiles* a statement (each table read, each function call, each write), so comments,
quoting tricks or odd spellings cannot hide a write, an ATTACH or a forbidden function.
A denied action fails the statement before it runs.

Two policies:

* the **database script** may create tables and insert rows whose values are literal
  expressions: no function calls at all, no views, triggers, indexes, virtual tables,
  PRAGMA, ATTACH, transactions, updates or deletes. ``INSERT ... SELECT`` and
  ``CREATE TABLE ... AS SELECT`` are rejected before the script runs (the keywords
  SELECT and WITH, see :mod:`.sqltext`), because SQLite reports a multi-row VALUES list
  as a SELECT too. SQLite's own bookkeeping (writes to ``sqlite_master``, the index
  behind a UNIQUE or PRIMARY KEY constraint) is allowed.
* the **query** is one read-only SELECT (WITH, joins, aggregates, window functions,
  subqueries and recursive CTEs allowed) that reads only the script's tables and calls
  only functions from :data:`ALLOWED_FUNCTIONS`.

Everything here runs inside the sandbox's per-job child process.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

__all__ = [
    "ALLOWED_FUNCTIONS",
    "DENIED_FUNCTIONS",
    "Policy",
    "Limits",
    "open_connection",
]

#: Deterministic, host-independent functions a query may call (lower case).
ALLOWED_FUNCTIONS: frozenset[str] = frozenset(
    {
        # scalar
        "abs", "char", "coalesce", "concat", "concat_ws", "format", "glob", "hex", "ifnull",
        "iif", "instr", "length", "like", "likely", "lower", "ltrim", "max", "min",
        "nullif", "octet_length", "printf", "quote", "replace", "round", "rtrim", "sign",
        "substr", "substring", "trim", "typeof", "unhex", "unicode", "unlikely", "upper",
        "zeroblob",
        # aggregate
        "avg", "count", "group_concat", "string_agg", "sum", "total",
        # window
        "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag",
        "lead", "first_value", "last_value", "nth_value",
        # math (when SQLite is built with them)
        "acos", "asin", "atan", "atan2", "ceil", "ceiling", "cos", "degrees", "exp",
        "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow", "power", "radians",
        "sin", "sqrt", "tan", "trunc",
    }
)

#: Functions named in rejections with a specific reason (all are outside the allow-list).
DENIED_FUNCTIONS: dict[str, str] = {
    **{name: "it is random" for name in ("random", "randomblob")},
    **{
        name: "it depends on the clock or the host's time zone"
        for name in (
            "date", "time", "datetime", "julianday", "strftime", "unixepoch", "timediff",
            "current_date", "current_time", "current_timestamp",
        )
    },
    **{
        name: "it depends on the connection's history, not on the database"
        for name in ("changes", "total_changes", "last_insert_rowid")
    },
    **{
        name: "it depends on the SQLite build"
        for name in ("sqlite_version", "sqlite_source_id", "sqlite_compileoption_get", "sqlite_compileoption_used")
    },
    "load_extension": "it loads native code",
}

_ACTION_NAMES = {
    value: name[len("SQLITE_"):].lower().replace("_", " ")
    for name, value in vars(sqlite3).items()
    if name.startswith("SQLITE_") and isinstance(value, int) and name not in (
        "SQLITE_OK", "SQLITE_DENY", "SQLITE_IGNORE",
    ) and not name.startswith(("SQLITE_LIMIT_", "SQLITE_DBCONFIG_"))
}


@dataclass(frozen=True)
class Limits:
    """Resource bounds of one sandbox job (the options of the same names)."""

    timeout: float
    memory_mb: int
    max_vm_steps: int
    max_tables: int
    max_rows: int
    max_result_rows: int
    max_result_chars: int
    max_value_bytes: int


class Policy:
    """An authorizer that remembers why it denied, so the rejection can say so."""

    def __init__(self, mode: str) -> None:
        if mode not in ("script", "query"):
            raise ValueError(f"unknown policy mode {mode!r}")
        self.mode = mode
        self.denied = ""

    def _deny(self, reason: str) -> int:
        self.denied = self.denied or reason
        return sqlite3.SQLITE_DENY

    def __call__(self, action: int, arg1: str | None, arg2: str | None, database: str | None, source: str | None) -> int:
        if self.mode == "script":
            return self._script(action, arg1, arg2)
        return self._query(action, arg1, arg2, database)

    def _script(self, action: int, arg1: str | None, arg2: str | None) -> int:
        internal = (arg1 or "").lower() in ("sqlite_master", "sqlite_schema")
        if action == sqlite3.SQLITE_CREATE_TABLE:
            if (arg1 or "").lower().startswith("sqlite_") and (arg1 or "").lower() != "sqlite_sequence":
                return self._deny(f"table name {arg1!r} is reserved")  # sqlite_sequence: AUTOINCREMENT's own
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_CREATE_INDEX and (arg1 or "").startswith("sqlite_autoindex_"):
            return sqlite3.SQLITE_OK  # the index behind a UNIQUE or PRIMARY KEY constraint
        if action in (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE) and (arg1 or "").lower() == "sqlite_sequence":
            return sqlite3.SQLITE_OK  # AUTOINCREMENT's bookkeeping
        if action == sqlite3.SQLITE_INSERT:
            if internal or not (arg1 or "").lower().startswith("sqlite_"):
                return sqlite3.SQLITE_OK
            return self._deny(f"writing to {arg1!r} is not allowed")
        if action in (sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_READ) and internal:
            return sqlite3.SQLITE_OK  # CREATE TABLE's own bookkeeping
        if action == sqlite3.SQLITE_SELECT:
            # a multi-row VALUES list compiles to a SELECT; reads, functions and SELECT
            # keywords (checked by the caller with sqltext.script_keywords) stay denied
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION:
            return self._deny(f"the database script calls {arg2}(): insert literal values only")
        if action == sqlite3.SQLITE_READ:
            # building a UNIQUE/PRIMARY KEY index reads its columns; a script cannot read
            # data otherwise: SELECT and WITH are rejected before it runs (sqltext)
            return sqlite3.SQLITE_OK
        return self._deny(
            f"the database script may only CREATE TABLE and INSERT literal rows, not "
            f"{_describe(action, arg1, arg2)}"
        )

    def _query(self, action: int, arg1: str | None, arg2: str | None, database: str | None) -> int:
        if action == sqlite3.SQLITE_SELECT or action == sqlite3.SQLITE_RECURSIVE:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_READ:
            if (arg1 or "").lower().startswith("sqlite_") or (database not in (None, "main")):
                return self._deny(f"the query reads {arg1!r}: only the database's own tables")
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION:
            name = (arg2 or "").lower()
            if name in ALLOWED_FUNCTIONS:
                return sqlite3.SQLITE_OK
            why = DENIED_FUNCTIONS.get(name, "it is not on the allow-list")
            return self._deny(f"function {name}() is not allowed: {why}")
        return self._deny(f"the query must be one read-only SELECT, not {_describe(action, arg1, arg2)}")


def _describe(action: int, arg1: str | None, arg2: str | None) -> str:
    name = _ACTION_NAMES.get(action, f"action {action}")
    detail = " ".join(str(a) for a in (arg1, arg2) if a)
    return f"{name.upper()} {detail}".strip()


def open_connection(limits: Limits) -> sqlite3.Connection:
    """A fresh in-memory database with SQLite's own limits tightened.

    ``isolation_level=None`` so the script is not wrapped in implicit transactions;
    ``temp_store=MEMORY`` so sorts never spill into temporary files; a hard heap limit
    (SQLite's allocator fails cleanly with "out of memory" before the process rlimit).
    """
    connection = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=True)
    for limit, value in (
        (sqlite3.SQLITE_LIMIT_LENGTH, limits.max_value_bytes),
        (sqlite3.SQLITE_LIMIT_SQL_LENGTH, 100_000),
        (sqlite3.SQLITE_LIMIT_COLUMN, 100),
        (sqlite3.SQLITE_LIMIT_EXPR_DEPTH, 100),
        (sqlite3.SQLITE_LIMIT_COMPOUND_SELECT, 20),
        (sqlite3.SQLITE_LIMIT_VDBE_OP, 25_000),
        (sqlite3.SQLITE_LIMIT_FUNCTION_ARG, 16),
        (sqlite3.SQLITE_LIMIT_ATTACHED, 0),
        (sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 200),
        (sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100),
        (sqlite3.SQLITE_LIMIT_TRIGGER_DEPTH, 1),
    ):
        connection.setlimit(limit, value)
    connection.execute("PRAGMA temp_store = MEMORY")
    connection.execute(f"PRAGMA hard_heap_limit = {int(limits.memory_mb) * 1024 * 1024 // 2}")
    connection.execute("PRAGMA trusted_schema = OFF")
    return connection
