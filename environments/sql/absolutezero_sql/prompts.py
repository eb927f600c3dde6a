"""Chat prompts and answer templates for the SQL environment's two roles.

Why they look like this (the same lessons as the code environment's prompts): the
embedded 0.5B model copies structure well and keeps to a multi-block format badly, so
prompts are short, state the rules once, show the answer skeleton with ``<placeholders>``
(a copied placeholder fails validation instead of scoring), and the default
``"template"`` style forces the fences and the statement openers (``CREATE TABLE``,
``SELECT``, ``INSERT INTO``) so the model writes only the SQL and the values. Forced text
is never trained on. Nothing here comes from a benchmark.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from absolutezero.protocol import Segment

__all__ = [
    "SYSTEM",
    "TEMPLATE_STYLE",
    "Messages",
    "proposer_messages",
    "induction_proposer_messages",
    "deduction_solver_messages",
    "abduction_solver_messages",
    "induction_solver_messages",
    "answer_template",
    "prefill_for",
]

Messages = tuple[Mapping[str, str], ...]

SYSTEM = (
    "You are a helpful assistant. You think inside <think> </think> and then give the "
    "final answer inside <answer> </answer>."
)
TEMPLATE_STYLE = "template"
_STYLES = {"think": "<think>", "answer": "<answer>\n", "none": ""}
_CLOSE = "```"
# Token budgets of the free parts, so one rambling sample cannot hold a batch's decoding;
# together they stay under the default generation.max_new_tokens (256) with the forced text.
_CREATE_TOKENS, _INSERT_TOKENS, _QUERY_TOKENS, _RESULT_TOKENS = 56, 130, 60, 100
_ROWS_TOKENS, _MESSAGE_TOKENS = 56, 40


def _fence(tag: str, body: str) -> str:
    return f"```{tag}\n{body}\n```"


RULES = (
    "We play an SQL reasoning game on SQLite. A task is a small database and one query.\n"
    "Rules:\n"
    "- The database is a CREATE TABLE statement with 2 to 4 columns, then one INSERT "
    "statement with 3 to 6 rows of literal values (numbers, 'text', NULL).\n"
    "- The query is one SELECT statement (WHERE, JOIN, GROUP BY, aggregates, window "
    "functions, subqueries and WITH are fine). It reads FROM the database's table and uses "
    "only its columns. No random(), no date functions, no changes.\n"
    "- If the query has LIMIT, its ORDER BY must put the rows in a unique order.\n"
    "- The query returns 1 to 50 rows."
)

_GOALS = {
    "deduction": "so that predicting the query's result takes careful step-by-step reasoning",
    "abduction": "so that writing a database on which the query gives this result takes "
    "careful reasoning about the query",
}


def _example(index: int, payload: Mapping[str, object]) -> str:
    return (
        f"Example {index}:\n"
        f"{_fence('database', str(payload['database']))}\n"
        f"{_fence('query', str(payload['query']))}\n"
        f"Result:\n{_fence('result', str(payload['result']))}"
    )


def proposer_messages(task_type: str, references: Sequence[Mapping[str, object]]) -> Messages:
    """Ask for a new (database, query) pair for ``deduction`` or ``abduction``."""
    if task_type not in _GOALS:
        raise ValueError(f"proposer_messages is for 'deduction' or 'abduction', got {task_type!r}")
    examples = "\n\n".join(_example(i + 1, ref) for i, ref in enumerate(references))
    shown = f"Existing tasks:\n\n{examples}\n\n" if examples else ""
    user = (
        f"{RULES}\n\n"
        "Write a new task, a database and a query, in this format:\n"
        "<answer>\n"
        + _fence("database", "CREATE TABLE <table> (<column> <TYPE>, ...);\nINSERT INTO <table> VALUES (<row>), (<row>), (<row>);")
        + "\n"
        + _fence("query", "SELECT <columns> FROM <table> <...>")
        + "\n</answer>\n\n"
        f"{shown}Your task must be new and different from the existing ones, {_GOALS[task_type]}."
    )
    return ({"role": "system", "content": SYSTEM}, {"role": "user", "content": user})


def induction_proposer_messages(
    query: str, schema: Sequence[str], example: str | None, num_databases: int, row: str | None = None
) -> Messages:
    """Ask for ``num_databases`` sets of rows for ``query``'s tables, plus a message.

    ``example`` is the reference's database script, shown as an example of rows. Its
    result is deliberately not shown: with it, the 0.5B model copied result rows
    (``(NULL, 1, 35.0)``) into the tables instead of writing table rows. ``row`` is a
    typed row placeholder (``('<text>', <integer>)``, see :func:`.sqltext.row_skeleton`)
    used in the answer skeleton when the tables are one table.
    """
    row = row or "(<row>)"
    tables = ";\n".join(schema) + ";"
    shown = f"An example database:\n{_fence('database', example)}\n" if example else ""
    user = (
        f"{RULES}\n\n"
        f"Here are the tables:\n{_fence('sql', tables)}\n"
        f"and a query on them:\n{_fence('query', query)}\n"
        f"{shown}\n"
        "First write a short one-line ```message that hints at what the query does without "
        f"showing it. Then write {num_databases} different databases for these tables, each "
        "one INSERT statement with 2 or 3 short rows in its own ```database block (one value "
        "per column, text in 'single quotes'), chosen so that someone who sees the query's "
        "results can work out the query, in this format:\n"
        "<answer>\n"
        + _fence("message", "<one line: what the query does>")
        + "\n"
        + _fence("database", f"INSERT INTO <table> VALUES {row}, {row};")
        + "\n"
        + _fence("database", "<... one block per database, each with other rows>")
        + "\n</answer>"
    )
    return ({"role": "system", "content": SYSTEM}, {"role": "user", "content": user})


_ROWS_FORMAT = (
    "Write each row on its own line as (value, value, ...): integers like 3, reals like "
    "2.5 or 3.0, text in single quotes like 'abc', NULL for null."
)


def deduction_solver_messages(database: str, query: str, ordered: bool) -> Messages:
    """Ask for the rows ``query`` returns on ``database``."""
    order = "in the order the query returns them" if ordered else "in any order"
    user = (
        "Run this SQLite query on this database and give the exact rows it returns.\n"
        f"{_fence('database', database)}\n"
        f"{_fence('query', query)}\n\n"
        f"{_ROWS_FORMAT} List the rows {order}, in this format:\n"
        "<answer>\n" + _fence("result", "(<value>, <value>, ...)\n(<value>, <value>, ...)") + "\n</answer>"
    )
    return ({"role": "system", "content": SYSTEM}, {"role": "user", "content": user})


def abduction_solver_messages(query: str, result: str) -> Messages:
    """Ask for a database on which ``query`` returns exactly ``result``."""
    user = (
        "Write a small SQLite database on which this query returns exactly this result.\n"
        f"{_fence('query', query)}\n"
        f"Result:\n{_fence('result', result)}\n\n"
        "Use one CREATE TABLE statement, then one INSERT statement with literal values only, "
        "in this format:\n"
        "<answer>\n"
        + _fence("database", "CREATE TABLE <table> (<column> <TYPE>, ...);\nINSERT INTO <table> VALUES (<row>), (<row>);")
        + "\n</answer>"
    )
    return ({"role": "system", "content": SYSTEM}, {"role": "user", "content": user})


def induction_solver_messages(schema: Sequence[str], pairs: Sequence[tuple[str, str]], message: str) -> Messages:
    """Ask for a query reproducing the shown (database, result) pairs."""
    tables = ";\n".join(schema) + ";"
    shown = "\n".join(f"{_fence('database', d)}\ngives\n{_fence('result', r)}" for d, r in pairs)
    user = (
        "Write one SQLite SELECT query that gives these results (it is also tested on other "
        f"databases).\nTables:\n{_fence('sql', tables)}\n"
        f"{shown}\n"
        f"Hint: {message}\n\n"
        "Write the query in this format:\n"
        "<answer>\n" + _fence("query", "SELECT <...>") + "\n</answer>"
    )
    return ({"role": "system", "content": SYSTEM}, {"role": "user", "content": user})


def answer_template(
    role: str, task_type: str, num_databases: int, table: str | None = None
) -> tuple[str, tuple[Segment, ...]]:
    """Prefill and segments of the ``"template"`` style for ``role`` x ``task_type``.

    Why this shape (measured with Qwen2.5-Coder-0.5B, see docs/environments/sql.md):
    free-running, the model wrote a query inside the database block, several INSERT
    statements that ran past the token budget, or never closed the block. So a database
    is forced to be one ``CREATE TABLE`` statement and one multi-row ``INSERT`` (each
    free part ends at its ``;``), the query starts with a forced ``SELECT``, and an
    induction database is one ``INSERT INTO <table> VALUES`` whose rows the model
    writes (``table``: the reference's single table, when there is exactly one), and
    the message is one line written *first* (a message closed by a fence, or written
    after the databases, was most often cut off by the token budget; now a cut-off only
    loses trailing databases, and ``min_induction_databases`` of them suffice). Forced
    text is never trained on; the parser reads the blocks exactly as it reads a
    free-running answer, so a part filled wrongly is rejected with the parser's reason.
    Openers end with a space: without it the model sometimes glued a name to the keyword
    (``CREATE TABLE读者``); a double space is harmless SQL. The induction opener ends
    with the first row's ``(`` (without it the model wrote ``VALUES 1, 2, 3``), and the
    prompt shows a typed row skeleton (with the ``(`` forced but no skeleton, the model
    left text unquoted or dropped a column).
    """
    create = (
        Segment(";", "\nINSERT INTO ", _CREATE_TOKENS),
    )
    if role == "propose" and task_type in ("deduction", "abduction"):
        return "<answer>\n```database\nCREATE TABLE ", create + (
            Segment(";", "\n```\n```query\nSELECT ", _INSERT_TOKENS),
            Segment(_CLOSE, max_tokens=_QUERY_TOKENS),
        )
    if role == "propose" and task_type == "induction":
        opener = f"INSERT INTO {table} VALUES (" if table else "INSERT INTO "
        rows = tuple(
            Segment(";", f"\n```\n```database\n{opener}", _ROWS_TOKENS) for _ in range(num_databases - 1)
        )
        return "<answer>\n```message\n", (
            Segment("\n", f"```\n```database\n{opener}", _MESSAGE_TOKENS),
            *rows,
            Segment(";", "\n```", _ROWS_TOKENS),
        )
    if role == "solve" and task_type == "deduction":
        return "<answer>\n```result\n", (Segment(_CLOSE, max_tokens=_RESULT_TOKENS),)
    if role == "solve" and task_type == "abduction":
        return "<answer>\n```database\nCREATE TABLE ", create + (
            Segment(";", "\n```", _INSERT_TOKENS),
        )
    if role == "solve" and task_type == "induction":
        return "<answer>\n```query\nSELECT ", (Segment(_CLOSE, max_tokens=_QUERY_TOKENS),)
    raise ValueError(f"no answer template for role {role!r} and task type {task_type!r}")


def prefill_for(style: str, role: str, task_type: str) -> str:
    """The assistant prefill under a non-template ``style`` (``think``, ``answer``,
    ``none``, or any other text used verbatim)."""
    del role, task_type
    return _STYLES.get(style, style)
