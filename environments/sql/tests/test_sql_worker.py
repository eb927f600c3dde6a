"""The worker's fork-per-job runner: results, wall-clock kills, crashes, rlimits."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time

from _sql_helpers import LIMITS, TABLE_SCRIPT

from absolutezero_sql import worker


def test_a_job_runs_in_a_child_and_returns_rows():
    result = worker.run_forked({"script": TABLE_SCRIPT, "query": "SELECT a FROM t ORDER BY a"}, LIMITS)
    assert result["ok"] and [r[0][1] for r in result["rows"]] == [1, 2, 2]


def test_a_hanging_child_is_killed_with_a_reason(monkeypatch):
    monkeypatch.setattr(worker, "run_job", lambda job, limits: time.sleep(60))
    started = time.monotonic()
    result = worker.run_forked({"script": ""}, LIMITS)
    assert not result["ok"] and "wall-clock" in result["reason"]
    assert time.monotonic() - started < LIMITS.timeout + 5


def test_a_child_that_dies_silently_is_reported(monkeypatch):
    monkeypatch.setattr(worker, "run_job", lambda job, limits: os._exit(3))
    result = worker.run_forked({"script": ""}, LIMITS)
    assert not result["ok"] and "without a result" in result["reason"]


def test_the_child_cannot_write_files_or_grow_past_its_memory(monkeypatch, tmp_path):
    target = tmp_path / "written.txt"

    def write(job, limits):
        try:
            with open(target, "w") as handle:
                handle.write("x" * 10)
        except OSError as error:
            return {"ok": False, "stage": "query", "reason": f"write failed: {error}"}
        return {"ok": True}

    monkeypatch.setattr(worker, "run_job", write)
    result = worker.run_forked({"script": ""}, LIMITS)
    assert not result.get("ok") or not target.exists() or target.stat().st_size == 0

    # The memory half runs where the pool runs jobs: in a small worker interpreter, not
    # in a fork of this test process (whose size and threads say nothing about the sandbox).
    hog = (
        "import json, sys\n"
        "from absolutezero_sql import worker\n"
        "from absolutezero_sql.policy import Limits\n"
        "worker.run_job = lambda job, limits: {'ok': True, 'n': len([bytearray(64 << 20) for _ in range(64)])}\n"
        "print(json.dumps(worker.run_forked({'script': ''}, Limits(**json.loads(sys.argv[1])))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", hog, json.dumps(dataclasses.asdict(LIMITS))],
        capture_output=True, text=True, timeout=60, check=True,
    )
    result = json.loads(done.stdout)
    assert not result["ok"] and result["reason"] == f"ran out of memory (limit {LIMITS.memory_mb} MB)"


def test_a_job_is_refused_when_a_limit_cannot_be_set(monkeypatch):
    def refuse_memory(which, pair):
        if which == worker.resource.RLIMIT_AS:
            raise ValueError("not allowed here")

    monkeypatch.setattr(worker.resource, "setrlimit", refuse_memory)
    monkeypatch.setattr(worker, "run_job", lambda job, limits: {"ok": True})
    result = worker.run_forked({"script": ""}, LIMITS)
    assert not result["ok"] and result["reason"].startswith("refused: could not set the sandbox's memory")
