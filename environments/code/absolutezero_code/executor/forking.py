"""The worker's fork loops: run each job in a fresh child, collect its result bytes.

Two interchangeable loops with the same contract (:meth:`ForkLoop.run`):

* :class:`NativeForkLoop` drives :mod:`._forkjobs`, a small C extension. A fork here is
  cheap, but every page a process writes after it costs a page fault, and a Python loop between forks writes dozens of worker pages that each fork
  makes copy-on-write again; the C loop writes a handful, and its children set their
  descriptors and limits without a Python frame, so a job costs less CPU (figures:
  docs/results.md).
* :class:`PythonForkLoop` is the same loop in Python, used when the extension is not
  built (no C compiler at install time) or when asked for (``fork_loop="python"``).

Isolation does not depend on the choice: in both, the child closes every descriptor
but its result pipe, sets the resource limits, then calls the worker's ``child(job,
fd)`` function, which arms the audit hook and runs the program. Stdlib only (this
module runs in the worker, see :data:`.worker.BOOTSTRAP`).
"""

from __future__ import annotations

import _thread
import os
import signal
import time
from collections.abc import Callable

from . import guard

__all__ = ["FORK_LOOPS", "ForkLoop", "NativeForkLoop", "PythonForkLoop", "make_fork_loop", "native_available"]

#: ``native``: :class:`NativeForkLoop` (fewer page faults per fork); ``python``:
#: :class:`PythonForkLoop`; ``auto``: native when the extension is built.
FORK_LOOPS = ("auto", "native", "python")
#: Highest descriptor number a Python-loop child closes up to (one ``close_range``).
_MAX_FD = 1 << 20
#: Exit code of a child whose job function raised.
_EXIT_JOB_RAISED = 70


class ForkLoop:
    """Runs jobs one after another, each in a freshly forked child of this process.

    Only for a single-threaded process (the worker): children are plain forks.
    """

    name = ""

    def run(
        self,
        jobs: list,
        start: int,
        child: Callable[[object, int], None],
        plan: tuple,
        timeout: float,
        cap: int,
        budget: float,
    ) -> list:
        """Run ``jobs[start:]`` until all ran or ``budget`` seconds passed (at least one).

        Args:
            jobs: the job objects, passed to ``child`` as they are.
            child: called in the child as ``child(job, fd)``; what it writes to ``fd``
                is the job's result.
            plan: the resource limits (:func:`.guard.limit_plan`) the child sets first.
            timeout: wall-clock seconds after which a child is killed.
            cap: bytes after which a child is killed (its output is too long).
            budget: seconds after which no further job is started.

        Returns:
            One outcome per job run, in order: the bytes the child wrote (it exited 0
            after writing something), or a failure ``(kind, detail)``: ``("timeout",
            0)``, ``("output_limit", 0)``, ``("signal", number)``, ``("exit", code)``
            (code 0: nothing written) or ``("fork", errno)``; :func:`failure` turns it
            into a result.
        """
        raise NotImplementedError


def native_available() -> bool:
    """Whether the C extension is built and importable."""
    try:
        from . import _forkjobs  # noqa: F401
    except ImportError:
        return False
    return True


def make_fork_loop(choice: str) -> ForkLoop:
    """The fork loop for ``choice`` (one of :data:`FORK_LOOPS`).

    Raises:
        ValueError: unknown choice.
        ImportError: ``native`` asked for but the extension is not built.
    """
    if choice not in FORK_LOOPS:
        raise ValueError(f"fork loop must be one of {', '.join(FORK_LOOPS)}, got {choice!r}")
    if choice == "python" or (choice == "auto" and not native_available()):
        return PythonForkLoop()
    return NativeForkLoop()


def failure(kind: str, detail: int, timeout: float, output_limit: int) -> list:
    """The ``[status, None, reason]`` result of a failure outcome of :meth:`ForkLoop.run`."""
    if kind == "timeout":
        return ["timeout", None, f"exceeded the time limit of {timeout:g} s"]
    if kind == "output_limit":
        return ["output_limit", None, f"output longer than {output_limit} characters"]
    if kind == "signal":
        if detail in (signal.SIGXCPU, signal.SIGKILL):
            return ["timeout", None, "exceeded the CPU time limit"]
        try:
            name = signal.Signals(detail).name
        except ValueError:
            name = str(detail)
        return ["error", None, f"sandboxed process died with signal {name}"]
    if kind == "fork":
        return ["error", None, f"could not start a sandboxed process: {os.strerror(detail)}"]
    return ["error", None, f"sandboxed process exited (code {detail}) without a result"]


class NativeForkLoop(ForkLoop):
    """:class:`ForkLoop` in C (:mod:`._forkjobs`)."""

    name = "native"

    def __init__(self) -> None:
        from . import _forkjobs

        self._run_jobs = _forkjobs.run_jobs

    def run(self, jobs, start, child, plan, timeout, cap, budget):  # noqa: D102 - see ForkLoop
        # Its children skip CPython's after-fork clean-up, which only matters when other
        # threads exist (their locks); the worker never starts one, and this keeps it so.
        if _thread._count():
            raise RuntimeError("the native fork loop needs a single-threaded process")
        limits = tuple((resource, soft, hard) for resource, (soft, hard) in plan)
        return self._run_jobs(jobs, start, child, limits, timeout, cap, budget)


class PythonForkLoop(ForkLoop):
    """:class:`ForkLoop` in Python: same contract, somewhat more CPU per job."""

    name = "python"

    def __init__(self) -> None:
        import select  # here, not at the top: the native loop's workers do without it

        self._poller = select.poll()
        self._pollin = select.POLLIN

    def run(self, jobs, start, child, plan, timeout, cap, budget):  # noqa: D102 - see ForkLoop
        # The hot loop: after each fork every page the worker writes costs a page fault
        # (a copy while the child lives), so its own work between forks stays small.
        pipe, fork, close, now = os.pipe, os.fork, os.close, time.monotonic
        outcomes = []
        began = now()
        for index in range(start, len(jobs)):
            if index > start and now() - began >= budget:
                break
            read_fd, write_fd = pipe()
            try:
                pid = fork()
            except OSError as error:
                close(read_fd)
                close(write_fd)
                outcomes.append(("fork", error.errno or 0))
                continue
            if pid == 0:  # child
                try:
                    os.closerange(0, write_fd)
                    os.closerange(write_fd + 1, _MAX_FD)
                    guard.apply_plan(plan)
                    child(jobs[index], write_fd)
                    os._exit(0)
                except BaseException:  # noqa: BLE001
                    os._exit(_EXIT_JOB_RAISED)
            close(write_fd)
            outcomes.append(self._collect(pid, read_fd, timeout, cap))
        return outcomes

    def _collect(self, pid: int, read_fd: int, timeout: float, cap: int) -> object:
        """Read a child's result until end of file, then reap it.

        The write end closes when the child exits (it cannot close it itself, nor start
        processes that could hold it), so end of file means the child is gone or going.
        At the wall-clock deadline, or when the result grows past ``cap``, the child is
        killed (no PID reuse: it is not reaped yet).
        """
        poller = self._poller
        deadline = time.monotonic() + timeout
        chunks: list[bytes] = []
        size = 0
        killed = None
        poller.register(read_fd, self._pollin)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    killed = "timeout"
                    break
                if not poller.poll(remaining * 1000):
                    continue
                data = os.read(read_fd, 1 << 20)
                if not data:
                    break
                chunks.append(data)
                size += len(data)
                if size > cap:
                    killed = "output_limit"
                    break
            if killed is not None:
                os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        finally:
            poller.unregister(read_fd)
            os.close(read_fd)
        if killed is not None:
            return (killed, 0)
        if os.WIFSIGNALED(status):
            return ("signal", os.WTERMSIG(status))
        code = os.WEXITSTATUS(status)
        if not chunks or code != 0:
            return ("exit", code)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
