"""Trainer-side pool of pre-started sandbox workers (:mod:`.worker`).

Why a pool of separate interpreters: model-written SQL never runs in the trainer's
process. Workers are started once (lazily, on the first batch) with ``python -I`` in an
empty temporary directory and an empty environment; each job is then a fork inside a
worker (~1 ms), so every job gets a fresh process and a fresh in-memory database. The
trainer only moves JSON lines. A worker that does not answer within its budget is
killed and restarted, and the job fails with a reason.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from .policy import Limits

__all__ = ["SandboxPool"]


class _Worker:
    def __init__(self, limits: Limits, directory: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-m", "absolutezero_sql.worker", json.dumps(dataclasses.asdict(limits))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=directory,
            env={"PATH": os.defpath, "LC_ALL": "C"},
            close_fds=True,
        )
        self.buffer = b""

    def send(self, job: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(job).encode() + b"\n")
        self.process.stdin.flush()

    def fileno(self) -> int:
        assert self.process.stdout is not None
        return self.process.stdout.fileno()

    def read_line(self) -> bytes | None:
        """One complete reply line if available after reading what is ready; b'' on EOF."""
        chunk = os.read(self.fileno(), 1 << 20)
        if not chunk:
            return b""
        self.buffer += chunk
        if b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            return line
        return None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:  # unflushed bytes to a dead worker
                    pass


class SandboxPool:
    """Runs sandbox jobs on ``workers`` pre-started worker processes.

    Args:
        workers: number of worker processes (each runs one job at a time).
        limits: the resource bounds every job runs under.
    """

    def __init__(self, workers: int, limits: Limits) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive int, got {workers!r}")
        self.limits = limits
        self._size = workers
        self._directory: tempfile.TemporaryDirectory[str] | None = None
        self._workers: list[_Worker] = []

    def _start(self) -> None:
        if self._directory is None:
            self._directory = tempfile.TemporaryDirectory(prefix="absolutezero-sql-")
        while len(self._workers) < self._size:
            self._workers.append(_Worker(self.limits, self._directory.name))

    def run_many(self, jobs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Results of ``jobs`` in order, each from its own fresh process."""
        if not jobs:
            return []
        self._start()
        results: list[dict[str, Any] | None] = [None] * len(jobs)
        queue = list(range(len(jobs)))[::-1]
        busy: dict[int, tuple[int, float]] = {}  # worker slot -> (job index, deadline)
        budget = self.limits.timeout + 5.0
        while queue or busy:
            for slot, worker in enumerate(self._workers):
                if slot not in busy and queue:
                    index = queue.pop()
                    try:
                        worker.send(jobs[index])
                    except (BrokenPipeError, OSError):
                        self._restart(slot)
                        self._workers[slot].send(jobs[index])
                    busy[slot] = (index, time.monotonic() + budget)
            now = time.monotonic()
            wait = max(0.0, min(deadline for _, deadline in busy.values()) - now)
            ready, _, _ = select.select([self._workers[s] for s in busy], [], [], wait)
            for worker in ready:
                slot = self._workers.index(worker)
                index, _ = busy[slot]
                line = worker.read_line()
                if line is None:
                    continue
                del busy[slot]
                if line == b"":
                    results[index] = {"ok": False, "stage": "query", "reason": "sandbox worker died"}
                    self._restart(slot)
                    continue
                try:
                    reply = json.loads(line)
                except ValueError:
                    reply = None
                results[index] = reply if isinstance(reply, dict) else {
                    "ok": False, "stage": "query", "reason": "malformed reply from the sandbox worker"}
            now = time.monotonic()
            for slot, (index, deadline) in list(busy.items()):
                if now > deadline:
                    del busy[slot]
                    results[index] = {"ok": False, "stage": "query", "reason": f"no answer within {budget:g} s; worker killed"}
                    self._restart(slot)
        return [result for result in results if result is not None]

    def _restart(self, slot: int) -> None:
        self._workers[slot].kill()
        assert self._directory is not None
        self._workers[slot] = _Worker(self.limits, self._directory.name)

    def close(self) -> None:
        """Stop all workers. Safe to call twice."""
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.kill()
        directory, self._directory = self._directory, None
        if directory is not None:
            directory.cleanup()
