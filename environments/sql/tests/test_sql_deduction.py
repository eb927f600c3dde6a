"""Deduction: proposals become (database, query, result) tasks; answers are rows."""

from __future__ import annotations

import numpy as np
import pytest
from _sql_helpers import PEOPLE, fence, proposal

from absolutezero_sql.env import SqlEnvironment


@pytest.fixture(scope="module")
def env():
    with SqlEnvironment() as environment:
        yield environment


def _propose(env, database, query, references=()):
    prompt = env.proposer_prompt("deduction", list(references), np.random.default_rng(0))
    return env.validate([prompt], [prompt.prefill[:0] + proposal(database, query)])[0]


def test_a_valid_proposal_records_result_order_and_schema(env):
    result = _propose(env, PEOPLE, "SELECT name, age FROM people WHERE age > 30 ORDER BY age DESC")
    assert result.valid, result.reason
    payload = result.task.payload
    assert payload["result"] == "('Cid', 40)\n('Dee', 35)\n('Ann', 31)"
    assert payload["ordered"] is True
    assert payload["schema"] == ["CREATE TABLE people (name TEXT, age INTEGER, city TEXT)"]


def test_unordered_query_is_compared_as_a_multiset(env):
    task = _propose(env, PEOPLE, "SELECT city FROM people WHERE city IS NOT NULL").task
    assert task.payload["ordered"] is False
    prompt = env.solver_prompt(task)
    right = fence("result", "('Rome')\n('Oslo')\n('Oslo')")
    wrong = fence("result", "('Rome')\n('Oslo')")
    assert [v.score for v in env.verify([task] * 2, [prompt] * 2, [right, wrong])] == [1.0, 0.0]


def test_ties_under_order_by_fall_back_to_multiset(env):
    task = _propose(env, PEOPLE, "SELECT city, name FROM people WHERE city IS NOT NULL ORDER BY city").task
    assert task.payload["ordered"] is False


def test_ordered_results_must_keep_their_order_and_types(env):
    task = env.seed_tasks("deduction")[1]
    prompt = env.solver_prompt(task)
    answers = [
        fence("result", "(NULL, 1, 35.0)\n('Oslo', 2, 35.5)\n('Rome', 1, 25.0)"),
        fence("result", "('Oslo', 2, 35.5)\n(NULL, 1, 35.0)\n('Rome', 1, 25.0)"),
        fence("result", "(NULL, 1, 35)\n('Oslo', 2, 35.5)\n('Rome', 1, 25)"),
        fence("result", "(NULL, '1', 35.0)\n('Oslo', 2, 35.5)\n('Rome', 1, 25.0)"),
    ]
    assert [v.score for v in env.verify([task] * 4, [prompt] * 4, answers)] == [1.0, 0.0, 0.0, 0.0]


def test_copies_of_references_are_rejected(env):
    seed = env.seed_tasks("deduction")[1]
    result = _propose(env, seed.payload["database"], "  " + seed.payload["query"].lower() + ";", [seed])
    assert not result.valid and "copies reference" in result.reason


def test_format_errors(env):
    prompt = env.proposer_prompt("deduction", [], np.random.default_rng(0))
    results = env.validate([prompt] * 3, [fence("query", "SELECT 1"), fence("database", PEOPLE), proposal(PEOPLE, "x" * 700)])
    assert [r.format_ok for r in results] == [False, False, False]
    assert "no ```database block" in results[0].reason and "no ```query block" in results[1].reason
    assert "limit" in results[2].reason
