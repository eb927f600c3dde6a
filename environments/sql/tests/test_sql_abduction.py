"""Abduction: the solver writes a database; any database that gives the rows counts."""

from __future__ import annotations

import pytest
from _sql_helpers import fence

from absolutezero_sql.env import SqlEnvironment


@pytest.fixture(scope="module")
def env():
    with SqlEnvironment() as environment:
        yield environment


def test_any_database_giving_the_result_is_correct(env):
    task = env.seed_tasks("abduction")[1]  # city, COUNT(*), AVG(age) by city
    prompt = env.solver_prompt(task)
    assert "```query" in prompt.messages[-1]["content"] and task.payload["result"] in prompt.messages[-1]["content"]
    other = "CREATE TABLE people (name TEXT, age INTEGER, city TEXT);\nINSERT INTO people VALUES ('X', 35, NULL), ('Y', 30, 'Oslo'), ('Z', 41, 'Oslo'), ('W', 25, 'Rome');"
    wrong_type = "CREATE TABLE people (name TEXT, age REAL, city TEXT);\nINSERT INTO people VALUES ('X', 35, NULL), ('Y', 30, 'Oslo'), ('Z', 41, 'Oslo'), ('W', 25, 'Rome');"
    missing = "CREATE TABLE people (name TEXT, age INTEGER, city TEXT);"
    answers = [fence("database", d) for d in (other, wrong_type, missing)] + ["I would write a table."]
    verdicts = env.verify([task] * 4, [prompt] * 4, answers)
    assert [v.score for v in verdicts] == [1.0, 1.0, 0.0, 0.0]
    assert verdicts[3].format_ok is False and verdicts[2].reason


def test_answer_limits_apply(env):
    task = env.seed_tasks("abduction")[0]
    prompt = env.solver_prompt(task)
    big = "CREATE TABLE t (x INTEGER);\nINSERT INTO t VALUES " + ", ".join(f"({i})" for i in range(40)) + ";"
    verdict = env.verify([task], [prompt], [fence("database", big)])[0]
    assert verdict.score == 0.0 and "rows in all" in verdict.reason
