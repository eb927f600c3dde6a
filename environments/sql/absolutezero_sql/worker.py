"""Sandbox worker: a small interpreter that forks a fresh child for every job.

Started by :mod:`.pool` as ``python -I -m absolutezero_sql.worker LIMITS_JSON`` with an
empty environment in an empty temporary directory. It reads one JSON job per line on
stdin and writes one JSON result per line on stdout. Each job runs in its own forked
child (so nothing a job does survives it, and two runs of a job are two processes) with
rlimits set before any model text is touched: address space, CPU seconds, no file
writes (``RLIMIT_FSIZE = 0``), no new processes, few file descriptors. The worker kills a
child that overruns its wall-clock budget and reports why.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import sys
import time
from typing import Any

from .jobs import run_job
from .policy import Limits

__all__ = ["run_forked", "main"]

_MAX_REPLY = 4 * 1024 * 1024


def _limit_child(limits: Limits) -> None:
    """Set the child's rlimits (soft = hard, so the job cannot raise them).

    A hard limit the platform already sets lower is kept (stricter is fine). A limit
    that cannot be set at all raises :class:`OSError`: the job is then refused, never
    run without its sandbox.
    """
    memory = int(limits.memory_mb) * 1024 * 1024
    cpu = max(1, int(limits.timeout * 2 + 1))
    for name, which, value in (
        ("memory (RLIMIT_AS)", resource.RLIMIT_AS, memory),
        ("CPU time (RLIMIT_CPU)", resource.RLIMIT_CPU, cpu),
        ("file size (RLIMIT_FSIZE)", resource.RLIMIT_FSIZE, 0),
        ("process count (RLIMIT_NPROC)", resource.RLIMIT_NPROC, 0),
        ("open files (RLIMIT_NOFILE)", resource.RLIMIT_NOFILE, 16),
        ("core size (RLIMIT_CORE)", resource.RLIMIT_CORE, 0),
    ):
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError) as error:
            raise OSError(f"could not set the sandbox's {name} limit: {error}") from error


def run_forked(job: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """Run ``job`` in a fresh forked child with rlimits; kill it past the wall-clock budget."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(read_end)
            try:
                _limit_child(limits)
            except OSError as error:
                result = {"ok": False, "stage": "query", "reason": f"refused: {error}"}
            else:
                try:
                    result = run_job(job, limits)
                except MemoryError:
                    result = {"ok": False, "stage": "query", "reason": f"ran out of memory (limit {limits.memory_mb} MB)"}
            data = json.dumps(result).encode()
            view = memoryview(data)
            while view:
                view = view[os.write(write_end, view):]
            # EOF now: the parent must not wait for the kernel to tear down this child's
            # copy of a large address space (a fork of a big process) before it returns.
            os.close(write_end)
        except BaseException:  # noqa: BLE001 -- the parent reports a silent exit
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + limits.timeout + 1.0
    reason = ""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                reason = f"killed after {limits.timeout + 1.0:g} s of wall-clock time"
                break
            ready, _, _ = select.select([read_end], [], [], left)
            if not ready:
                continue
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > _MAX_REPLY:
                reason = "the job's reply is too large"
                break
    finally:
        os.close(read_end)
    if reason:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if reason:
        return {"ok": False, "stage": "query", "reason": reason}
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        why = {signal.SIGXCPU: "CPU time limit", signal.SIGKILL: "killed", signal.SIGSEGV: "crashed (memory?)"}
        return {"ok": False, "stage": "query", "reason": f"sandbox child ended by signal {number} ({why.get(number, 'signal')})"}
    try:
        result = json.loads(b"".join(chunks))
    except ValueError:
        return {"ok": False, "stage": "query", "reason": "sandbox child exited without a result (memory limit?)"}
    return result if isinstance(result, dict) else {"ok": False, "stage": "query", "reason": "malformed sandbox result"}


def main() -> None:
    """Serve jobs from stdin until it closes."""
    limits = Limits(**json.loads(sys.argv[1]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the trainer's Ctrl-C is the parent's to handle
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        try:
            job = json.loads(line)
            if not isinstance(job, dict) or "script" not in job:
                raise ValueError("a job needs a 'script'")
            result = run_forked(job, limits)
        except ValueError as error:
            result = {"ok": False, "stage": "database", "reason": f"bad job: {error}"}
        out.write(json.dumps(result).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    main()
