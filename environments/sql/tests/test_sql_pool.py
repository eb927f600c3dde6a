"""The trainer-side pool: order of results, restarts, closing, no SQL in this process."""

from __future__ import annotations

import os

import pytest
from _sql_helpers import LIMITS, TABLE_SCRIPT

from absolutezero_sql.pool import SandboxPool


@pytest.fixture()
def pool():
    sandbox = SandboxPool(2, LIMITS)
    yield sandbox
    sandbox.close()


def test_results_come_back_in_job_order(pool):
    jobs = [{"script": TABLE_SCRIPT, "query": f"SELECT {i}"} for i in range(7)]
    assert [r["rows"][0][0][1] for r in pool.run_many(jobs)] == list(range(7))
    assert pool.run_many([]) == []


def test_a_dead_worker_is_replaced(pool):
    pool.run_many([{"script": TABLE_SCRIPT, "query": "SELECT 1"}])
    for worker in pool._workers:
        worker.process.kill()
        worker.process.wait()
    results = pool.run_many([{"script": TABLE_SCRIPT, "query": "SELECT 2"}] * 3)
    assert any(r["ok"] for r in results) or all("worker" in r["reason"] for r in results)
    again = pool.run_many([{"script": TABLE_SCRIPT, "query": "SELECT 3"}] * 2)
    assert all(r["ok"] for r in again)


def test_close_is_idempotent_and_the_pool_restarts_on_use(pool):
    pool.close()
    pool.close()
    assert pool.run_many([{"script": TABLE_SCRIPT, "query": "SELECT 1"}])[0]["ok"]


def test_jobs_run_in_other_processes(pool):
    pool.run_many([{"script": TABLE_SCRIPT, "query": "SELECT 1"}])
    assert pool._workers and all(w.process.pid not in (0, os.getpid()) for w in pool._workers)


def test_bad_worker_count():
    with pytest.raises(ValueError):
        SandboxPool(0, LIMITS)
