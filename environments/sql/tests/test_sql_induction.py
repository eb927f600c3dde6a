"""Induction: databases for a reference query, a message, and hidden pairs to reproduce."""

from __future__ import annotations

import numpy as np
import pytest
from _sql_helpers import fence

from absolutezero_sql.env import SqlEnvironment


@pytest.fixture(scope="module")
def env():
    with SqlEnvironment() as environment:
        yield environment


def _prompt(env):
    references = env.seed_tasks("deduction")[1:]  # the people query
    return env.proposer_prompt("induction", references, np.random.default_rng(0))


def _response(databases, message="Counts people and averages their age per city."):
    return "<answer>\n" + "\n".join(fence("database", d) for d in databases) + "\n" + fence("message", message) + "\n</answer>"


def test_prompt_carries_the_reference_query_and_tables(env):
    prompt = _prompt(env)
    assert prompt.context["query"].startswith("SELECT city, COUNT(*)")
    assert prompt.context["schema"] == ["CREATE TABLE people (name TEXT, age INTEGER, city TEXT)"]
    assert "CREATE TABLE people" in prompt.messages[-1]["content"]


def test_valid_proposal_splits_visible_and_hidden(env):
    databases = [
        "INSERT INTO people VALUES ('A', 20, 'Oslo');",
        "INSERT INTO people VALUES ('A', 20, 'Oslo'), ('B', 30, 'Oslo');",
        "INSERT INTO people VALUES ('A', 20, 'Rome'), ('B', 30, 'Oslo');",
        "INSERT INTO people VALUES ('A', 21, NULL);",
        "INSERT INTO people VALUES ('A', 20, 'Oslo');",  # duplicate: dropped
        "INSERT INTO people VALUES ('C', 50, 'Bergen'), ('D', 10, 'Bergen');",
    ]
    result = env.validate([_prompt(env)], [_response(databases)])[0]
    assert result.valid, result.reason
    payload = result.task.payload
    assert len(payload["databases"]) == 4  # the first 5 blocks count; one is a duplicate
    assert payload["visible"] == [0, 1] and payload["hidden"] == [2, 3]
    assert payload["results"][1] == "('Oslo', 2, 25.0)"
    assert payload["ordered"] is True


def test_too_few_databases_or_failing_ones_reject(env):
    prompt = _prompt(env)
    few = _response(["INSERT INTO people VALUES ('A', 1, 'x');"] * 5)
    creates = _response(["CREATE TABLE z (a); INSERT INTO people VALUES ('A', 1, 'x');"] + [f"INSERT INTO people VALUES ('A', {i}, 'x');" for i in range(2)])
    failing = _response([f"INSERT INTO nowhere VALUES ({i});" for i in range(4)] + ["INSERT INTO people VALUES ('A', 1, 'x');"])
    no_message = "<answer>\n" + fence("database", "INSERT INTO people VALUES ('A', 1, 'x');") + "\n</answer>"
    results = env.validate([prompt] * 4, [few, creates, failing, no_message])
    assert not any(r.valid for r in results)
    assert "only 1 distinct" in results[0].reason
    assert "INSERT statements only" in results[1].reason
    assert "no such table" in results[2].reason
    assert "no ```message" in results[3].reason


def test_solver_must_reproduce_hidden_pairs(env):
    task = env.seed_tasks("induction")[0]
    prompt = env.solver_prompt(task)
    text = prompt.messages[-1]["content"]
    for index in task.payload["visible"]:
        assert task.payload["databases"][index] in text
    for index in task.payload["hidden"]:
        assert task.payload["databases"][index] not in text
    answers = [fence("query", "SELECT x FROM t ORDER BY x"), fence("query", "SELECT x FROM t ORDER BY x DESC"), fence("query", "SELECT 1")]
    assert [v.score for v in env.verify([task] * 3, [prompt] * 3, answers)] == [1.0, 0.0, 0.0]
