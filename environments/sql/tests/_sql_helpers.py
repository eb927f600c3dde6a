"""Shared helpers for the SQL environment's tests (imported by name: pytest puts this
folder on sys.path; the name is unique across the repository's test folders)."""

from __future__ import annotations

from typing import Any

from absolutezero_sql.jobs import run_job
from absolutezero_sql.policy import Limits

LIMITS = Limits(
    timeout=2.0, memory_mb=256, max_vm_steps=20_000_000, max_tables=5, max_rows=30,
    max_result_rows=50, max_result_chars=2000, max_value_bytes=100_000,
)
TABLE_SCRIPT = "CREATE TABLE t (a INTEGER, b TEXT);\nINSERT INTO t VALUES (1, 'x'), (2, 'y'), (2, 'z');"
PEOPLE = (
    "CREATE TABLE people (name TEXT, age INTEGER, city TEXT);\n"
    "INSERT INTO people VALUES ('Ann', 31, 'Oslo'), ('Bob', 25, 'Rome'), ('Cid', 40, 'Oslo'), ('Dee', 35, NULL);"
)


def fence(tag: str, body: str) -> str:
    return f"```{tag}\n{body}\n```"


def proposal(database: str, query: str) -> str:
    return f"<answer>\n{fence('database', database)}\n{fence('query', query)}\n</answer>"


def in_process(script: str, query: str | None = None, variants: bool = False) -> dict[str, Any]:
    """Run one job in this process (policy tests only; hostile resource tests use the pool)."""
    return run_job({"script": script, "query": query, "variants": variants}, LIMITS)
