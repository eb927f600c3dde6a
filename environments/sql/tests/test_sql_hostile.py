"""Hostile proposals and answers through the real sandbox: every one is rejected with a
clear reason, nothing escapes, nothing hangs, and the pool keeps working afterwards."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from _sql_helpers import fence, proposal

from absolutezero.protocol import Task
from absolutezero_sql.env import SqlEnvironment

TABLE = "CREATE TABLE t (a INTEGER, b TEXT);\nINSERT INTO t VALUES (1, 'x'), (2, 'y'), (2, 'z');"


@pytest.fixture(scope="module")
def env():
    with SqlEnvironment(timeout=1.0, workers=2) as environment:
        yield environment


def _validate(env, task_type, database, query):
    prompt = env.proposer_prompt(task_type, [], np.random.default_rng(0))
    return env.validate([prompt], [proposal(database, query)])[0]


BOMBS = [
    ("WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r", "ran "),
    ("WITH RECURSIVE r(x) AS (SELECT 'a' UNION ALL SELECT x || x FROM r) SELECT length(x) FROM r", "grew beyond"),
    ("SELECT length(zeroblob(1000000000))", "grew beyond"),
    ("SELECT length(replace(hex(zeroblob(40000)), '0', '0000000000'))", "grew beyond"),
    ("SELECT count(*) FROM t a, t b, t c, t d, t e, t f, t g, t h, t i, t j, t k, t l, t m, t n, t o, t p, t q, t r", "ran "),
    ("SELECT a.a FROM t a, t b, t c, t d, t e", "more than 50 rows"),
    ("SELECT group_concat(b) FROM t", "order"),
    ("SELECT b FROM t ORDER BY a LIMIT 2", "order"),
    ("SELECT b FROM t LIMIT 1", "order"),
    ("SELECT b FROM t WHERE a = 9", "no rows"),
    ("SELECT random() FROM t", "random() is not allowed"),
    ("SELECT date('now')", "date() is not allowed"),
    ("SELECT b FROM t; DELETE FROM t", "exactly one SQL statement"),
    ("ATTACH DATABASE '/tmp/absolutezero-sql-evil.db' AS e", "not ATTACH"),
]


@pytest.mark.parametrize("query, reason", BOMBS)
def test_bombs_and_nondeterminism_are_rejected_with_a_reason(env, query, reason):
    started = time.monotonic()
    result = _validate(env, "deduction", TABLE, query)
    assert not result.valid and result.reason
    assert reason in result.reason
    assert time.monotonic() - started < 10
    assert not os.path.exists("/tmp/absolutezero-sql-evil.db")


def test_printf_width_bomb_is_bounded(env):
    """SQLite's printf gives NULL past SQLITE_LIMIT_LENGTH; on a slow machine the wall-clock
    budget may stop it first. Either way it ends in time, and nothing is truncated."""
    started = time.monotonic()
    result = _validate(env, "deduction", TABLE, "SELECT length(printf('%.*c', 100000000, 'x'))")
    assert time.monotonic() - started < 10
    assert (result.valid and result.task.payload["result"] == "(NULL)") or "ran" in result.reason or "killed" in result.reason


def test_huge_text_result_is_rejected_not_truncated(env):
    result = _validate(env, "deduction", TABLE, "SELECT printf('%.3000c', 'x')")
    assert not result.valid and "characters long" in result.reason


def test_pool_survives_and_jobs_share_no_state(env):
    assert not _validate(env, "abduction", TABLE, "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r").valid
    first = _validate(env, "deduction", TABLE + "CREATE TABLE extra (q);INSERT INTO extra VALUES (1);", "SELECT q FROM extra")
    assert first.valid
    second = _validate(env, "deduction", TABLE, "SELECT q FROM extra")
    assert not second.valid and "no such table" in second.reason


def test_deduction_answers_are_parsed_never_run(env):
    task = env.seed_tasks("deduction")[0]
    prompt = env.solver_prompt(task)
    answers = [
        "<answer>\n" + fence("result", "(1)\n(2)\n(3); DROP TABLE t") + "\n</answer>",
        "<answer>\n" + fence("result", "SELECT x FROM t ORDER BY x") + "\n</answer>",
        "<answer>\n" + fence("result", "(1) UNION SELECT 2") + "\n</answer>",
        "<answer>\n" + fence("result", "(1)\n(2)\n(3)") + "\n</answer>",
    ]
    verdicts = env.verify([task] * 4, [prompt] * 4, answers)
    assert [v.score for v in verdicts] == [0.0, 0.0, 0.0, 1.0]
    assert all(not v.format_ok for v in verdicts[:3])


def test_abduction_answers_go_through_the_script_policy(env):
    task = env.seed_tasks("abduction")[0]  # SELECT x FROM t ORDER BY x -> 1, 2, 3
    prompt = env.solver_prompt(task)
    answers = [
        fence("database", "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3); ATTACH 'x.db' AS x;"),
        fence("database", "CREATE TABLE t (x INTEGER); CREATE TRIGGER g AFTER INSERT ON t BEGIN SELECT 1; END;"),
        fence("database", "CREATE TABLE t (x INTEGER); INSERT INTO t SELECT 1 UNION SELECT 2 UNION SELECT 3;"),
        fence("database", "CREATE VIEW t AS SELECT 1 AS x UNION SELECT 2 UNION SELECT 3;"),
        fence("database", "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (3), (1), (2);"),
    ]
    verdicts = env.verify([task] * 5, [prompt] * 5, answers)
    assert [v.score for v in verdicts] == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert "ATTACH" in verdicts[0].reason and "SELECT" in verdicts[2].reason


def test_induction_answers_go_through_the_query_policy(env):
    task = env.seed_tasks("induction")[0]
    prompt = env.solver_prompt(task)
    answers = [
        fence("query", "SELECT x FROM t ORDER BY x; DELETE FROM t"),
        fence("query", "SELECT x FROM t ORDER BY random()"),
        fence("query", "SELECT x FROM t"),  # right rows, wrong order for an ordered task
        fence("query", "SELECT x FROM t ORDER BY x"),
        fence("query", "SELECT x FROM t ORDER BY -x DESC"),
    ]
    verdicts = env.verify([task] * 5, [prompt] * 5, answers)
    assert [v.score for v in verdicts][:2] == [0.0, 0.0]
    assert [v.score for v in verdicts][3:] == [1.0, 1.0]
    assert "one SQL statement" in verdicts[0].reason and "random" in verdicts[1].reason


def test_a_fence_in_an_answer_cannot_smuggle_a_second_block(env):
    task = env.seed_tasks("deduction")[0]
    prompt = env.solver_prompt(task)
    sneaky = "<answer>\n```result\n(9)\n```\n```result\n(1)\n(2)\n(3)\n```\n</answer>"
    # the last block counts, exactly as for any answer; there is no way to get both scored
    assert env.verify([task], [prompt], [sneaky])[0].score == 1.0
    task2 = Task("deduction", dict(task.payload))
    assert env.verify([task2], [prompt], ["(1)\n(2)\n(3)"])[0].format_ok is False
