"""Sandboxed, isolated, resource-limited execution of model-written programs.

Public API::

    from absolutezero_code.executor import Executor, RunResult, Status, run

    with Executor(timeout=1.0) as executor:
        results = executor.run_many([("def f(a):\\n    return a[::-1]", "'abc'")])
        results[0].output      # "'cba'"
        executor.canonicalize_many(["{2, 1}"])[0].output   # "{1, 2}"

    run("def f():\\n    return 1", "")   # one job on a shared, lazily started executor

    # code benchmarks: a program, then its test, in one sandboxed process; ok iff nothing raises
    executor.check_many([("def add(a, b):\\n    return a + b", "assert candidate(1, 2) == 3", "add")])

    # the same jobs and results on a Ray cluster, one node-local pool per node (the ray extra)
    with RayExecutor(timeout=1.0) as executor:   # address=None: RAY_ADDRESS, else a local cluster
        executor.run_many(jobs)

Every run happens in a fresh process forked from a warm worker (never in the caller's
process), after a static policy check (:mod:`.policy`), with restricted builtins, module
shims, an audit hook and resource limits (:mod:`.guard`); see :mod:`.worker` and
:mod:`.pool` for the process design.
"""

from __future__ import annotations

import atexit
import threading

from .pool import Executor, SandboxError
from .ray_pool import RayExecutor  # imports Ray only when one is created
from .results import RunResult, Status

__all__ = ["Executor", "RayExecutor", "RunResult", "SandboxError", "Status", "run"]

_shared: Executor | None = None
_shared_lock = threading.Lock()


def _close_shared() -> None:
    global _shared
    with _shared_lock:
        if _shared is not None:
            _shared.close()
            _shared = None


def run(program: str, input: str, timeout: float = 1.0) -> RunResult:  # noqa: A002
    """Run one job (with the two-run determinism check) on a shared executor.

    The shared executor is started on first use (one worker per core and hash-seed
    group) and stopped at interpreter exit. Use :class:`Executor` directly for batches.

    Returns:
        The :class:`RunResult` of ``f(*input)``.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Executor()
            atexit.register(_close_shared)
        executor = _shared
    return executor.run_many([(program, input)], timeout=timeout)[0]
