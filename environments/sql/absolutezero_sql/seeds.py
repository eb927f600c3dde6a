"""Seed proposals written for this environment (no benchmark data): the identity query
and one small grouped query, plus one induction seed.

Seeds are proposer *responses* in the environment's own answer format and go through the
same validation as model proposals, so their gold results come from the sandbox (never
hard-coded) and a broken sandbox shows up at start-up instead of as silently wrong seeds.
"""

from __future__ import annotations

from .induction import FALLBACK

__all__ = ["PAIRS", "INDUCTION_DATABASES", "INDUCTION_MESSAGE", "pair_response", "induction_response"]

#: (database, query) seeds for deduction and abduction. The first is the identity query
#: on the induction fallback's table, so induction's fallback query is a seed's query.
PAIRS: tuple[tuple[str, str], ...] = (
    (FALLBACK[1][0] + ";\nINSERT INTO t VALUES (1), (2), (3);", FALLBACK[0]),
    (
        "CREATE TABLE people (name TEXT, age INTEGER, city TEXT);\n"
        "INSERT INTO people VALUES ('Ann', 31, 'Oslo'), ('Bob', 25, 'Rome'), ('Cid', 40, 'Oslo'), ('Dee', 35, NULL);",
        "SELECT city, COUNT(*), AVG(age) FROM people GROUP BY city ORDER BY city",
    ),
)
INDUCTION_DATABASES: tuple[str, ...] = (
    "INSERT INTO t VALUES (3), (1), (2);",
    "INSERT INTO t VALUES (10);",
    "INSERT INTO t VALUES (-5), (0), (5), (0);",
    "INSERT INTO t VALUES (7), (42);",
    "INSERT INTO t VALUES (100), (99), (98), (97);",
    "INSERT INTO t VALUES (8), (6), (4);",
)
INDUCTION_MESSAGE = "It lists every value of x, smallest first."


def _fence(tag: str, body: str) -> str:
    return f"```{tag}\n{body}\n```"


def pair_response(database: str, query: str) -> str:
    return f"<answer>\n{_fence('database', database)}\n{_fence('query', query)}\n</answer>"


def induction_response(num_databases: int) -> str:
    blocks = [_fence("database", d) for d in INDUCTION_DATABASES[:num_databases]]
    blocks += [_fence("database", f"INSERT INTO t VALUES ({1000 + i});") for i in range(num_databases - len(blocks))]
    return "<answer>\n" + "\n".join(blocks) + "\n" + _fence("message", INDUCTION_MESSAGE) + "\n</answer>"
