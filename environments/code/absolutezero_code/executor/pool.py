"""Trainer-side executor: warm sandbox workers, batching, determinism runs.

Why this shape: a fork from a small warm worker costs a small fraction of a fresh
interpreter (figures: docs/results.md). So :class:`Executor` pre-starts two *groups* of workers
(:mod:`.worker`), each group an interpreter started with its own ``PYTHONHASHSEED``,
and every run is a fresh fork inside one of them. Run *r* of a job goes to group
``r % 2``: the determinism check compares processes that differ in hash seed and (via
ASLR and a random per-worker heap ballast) address layout. Jobs travel in batches (one
JSON line per batch, one line back per job, written in blocks) and one thread per
worker keeps all workers busy; the threads only move bytes and check reply shapes, so
the trainer process never parses, compiles or runs any program. Workers that die or
stop answering are killed and restarted (:mod:`.channel`); the first job of theirs
without a reply fails with a clear reason and the rest of their batch is re-sent.

With two or more runs, each job is first prepared once (policy, compile, arguments) by
any worker and sealed (:mod:`.prepare`); every run then unseals it in its own group.
Workers are *light* (no :data:`.policy.HEAVY_MODULES`, no CJK codecs) unless a job
needs more: such jobs come back as ``defer`` and re-run on *full* workers of the same
group, started on first need.
"""

from __future__ import annotations

import os
import queue
import secrets
import shutil
import tempfile
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from .limits import DEFAULT_MEMORY_MB, DEFAULT_OUTPUT_LIMIT, DEFAULT_TIMEOUT
from .channel import DEFER as _DEFER
from .channel import SandboxError, WorkerProcess, restricted_python_root
from .forking import FORK_LOOPS, native_available
from .prepare import sealing_available
from .results import RunResult, Status

__all__ = ["Executor", "SandboxError", "check_options"]

_MAX_CHUNK = 64


def _to_result(raw: list) -> RunResult:
    return RunResult(Status(raw[0]), raw[1], raw[2])


def _short(text: str | None, size: int = 120) -> str:
    text = "None" if text is None else text
    return text if len(text) <= size else text[: size - 3] + "..."


def _combine(runs: list[list]) -> RunResult:
    """Merge the determinism runs of one job into its result."""
    first = runs[0]
    if all(run[0] == first[0] and run[1] == first[1] for run in runs[1:]):
        return _to_result(first)
    statuses = [run[0] for run in runs]
    if len(set(statuses)) == 1 and statuses[0] != Status.OK.value:
        return _to_result(first)  # same failure, e.g. messages that embed addresses
    if all(status == Status.OK.value for status in statuses):
        shown = " vs ".join(_short(run[1]) for run in runs[:2])
        reason = f"outputs differ between runs in separate processes: {shown}"
    else:
        shown = "; ".join(
            f"run {number}: {run[0]}" + (f" ({_short(run[2], 80)})" if run[2] else "")
            for number, run in enumerate(runs, 1)
        )
        reason = f"runs in separate processes ended differently: {shown}"
    return RunResult(Status.NONDETERMINISTIC, None, reason)


def _shutdown(groups: list[list[WorkerProcess]], workdir: str, threads: ThreadPoolExecutor) -> None:
    threads.shutdown(wait=False)
    for group in groups:
        for worker in group:
            worker.stop()
    shutil.rmtree(workdir, ignore_errors=True)


class Executor:
    """Runs untrusted programs in fresh, isolated, resource-limited processes.

    Args:
        workers: workers per hash-seed group (two groups are started); ``None`` means
            half the CPU cores (at least one), so there is one worker per core in all
            (more only adds context switches between workers).
        timeout: wall-clock seconds per run (CPU time is capped at the next whole
            second plus one).
        memory_mb: address-space limit of each run, in MiB.
        output_limit: maximum length of a canonical output (and of printed text), in
            characters; longer outputs get :attr:`Status.OUTPUT_LIMIT`, never truncated.
        fork_loop: how workers fork their job processes: ``native`` (the C loop, less CPU
            per job), ``python`` (no
            compiled code), or ``auto`` (native when built). Isolation is the same;
            :attr:`fork_loop` says which one runs.
        pin_workers: pin each worker (and its job processes) to one of this process's
            CPUs, round robin, so that a job runs on the CPU where its worker's memory
            is cache-hot. Turn off when the workers share the machine with
            other heavy work that the scheduler should balance.
        module_tiers: run programs in *light* workers, which leave out the rarely
            imported :data:`.policy.HEAVY_MODULES` (smaller processes fork faster), and send the few programs that import one of those
            to *full* workers, started on first need. ``False``: full workers only.
            Results are the same either way.
        prepare_once: with two or more determinism runs, policy-check, compile and
            parse each job once, in one worker, and hand the other runs the job sealed
            under a key of this executor (:mod:`.prepare`). Needs the
            C extension (for the seal); otherwise every run prepares its job.
        restricted_python: run RestrictedPython's checker as the second static layer
            (:mod:`.restricted`; on by default). ``False`` exists to measure its cost.

    Raises:
        ValueError: an argument is out of range, or ``fork_loop="native"`` without the
            built extension.
        SandboxError: the workers cannot be started.

    Use as a context manager or call :meth:`close`; a forgotten executor is cleaned up
    when garbage-collected or at interpreter exit.
    """

    def __init__(
        self,
        workers: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        memory_mb: int = DEFAULT_MEMORY_MB,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
        *,
        fork_loop: str = "auto",
        pin_workers: bool = True,
        module_tiers: bool = True,
        prepare_once: bool = True,
        restricted_python: bool = True,
    ) -> None:
        check_options(workers, timeout, memory_mb, output_limit)
        if fork_loop not in FORK_LOOPS:
            raise ValueError(f"fork_loop must be one of {', '.join(FORK_LOOPS)}, got {fork_loop!r}")
        if fork_loop == "native" and not native_available():
            raise ValueError(
                "fork_loop='native' needs the compiled extension absolutezero_code.executor."
                "_forkjobs, which is not built; reinstall with a C compiler "
                "(pip install -e .) or use fork_loop='auto'"
            )
        self.timeout = float(timeout)
        self.memory_mb = memory_mb
        self.output_limit = output_limit
        self.workers = workers if workers is not None else max(1, (os.cpu_count() or 1) // 2)
        first = secrets.randbelow(2**32 - 1) + 1
        second = first % (2**32 - 1) + 1  # a different non-zero seed
        self._workdir = tempfile.mkdtemp(prefix="absolutezero-sandbox-")
        cpus = _worker_cpus(2 * self.workers) if pin_workers else [-1] * (2 * self.workers)
        self._worker_specs = [
            [(seed, cpus.pop(0)) for _ in range(self.workers)] for seed in (first, second)
        ]
        self._fork_loop = fork_loop
        self._key = secrets.token_bytes(16) if prepare_once and sealing_available() else None
        tier = "light" if module_tiers else "full"
        self._restricted_root = restricted_python_root() if restricted_python else ""
        self._groups = [
            [WorkerProcess(seed, self._workdir, fork_loop, cpu, tier, self._key, self._restricted_root) for seed, cpu in specs]
            for specs in self._worker_specs
        ]
        # Full-tier workers for programs the light tier defers; started on first need
        # (never, when every worker is full-tier: those do not defer).
        self._full_groups: list[list[WorkerProcess]] = [[], []]
        self._threads = ThreadPoolExecutor(
            max_workers=2 * self.workers, thread_name_prefix="absolutezero-sandbox"
        )
        self._lock = threading.Lock()
        self._closed = False
        all_groups = self._groups + self._full_groups
        self._finalizer = weakref.finalize(self, _shutdown, all_groups, self._workdir, self._threads)
        try:
            _start(sum(self._groups, []))
        except BaseException:
            self.close()
            raise

    @property
    def fork_loop(self) -> str:
        """The fork loop the workers run: ``native`` or ``python``."""
        return self._groups[0][0].fork_loop_name

    def worker_pids(self) -> list[int]:
        """Process ids of the live worker processes (for monitoring and benchmarks:
        their CPU time, including reaped job children, is in ``/proc/<pid>/stat``)."""
        groups = self._groups + self._full_groups
        return [worker.pid for group in groups for worker in group if worker.pid is not None]

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers and remove the sandbox directory. Idempotent."""
        self._closed = True
        self._finalizer()

    def _limits(self, timeout: float | None) -> dict:
        if timeout is not None:
            _check_timeout(timeout)
        return {
            "timeout": self.timeout if timeout is None else float(timeout),
            "memory_mb": self.memory_mb,
            "output_limit": self.output_limit,
        }

    def _dispatch(self, kind: str, work: list[list], limits: dict) -> list[list]:
        """Run ``work[g]`` (item lists) on group ``g``; return the raw results per group.

        ``work`` may have one entry (spread over all workers) or one per group. Jobs a
        light worker defers run again on the full worker(s) of the same group.
        """
        if self._closed:
            raise RuntimeError("this Executor is closed; create a new one")
        outputs = self._run_on(self._groups, kind, work, limits)
        deferred = [[index for index, raw in enumerate(out) if raw[0] == _DEFER] for out in outputs]
        if any(deferred):
            full_groups = self._started_full_groups()
            again = [[items[index] for index in positions] for items, positions in zip(work, deferred)]
            for out, positions, results in zip(outputs, deferred, self._run_on(full_groups, kind, again, limits)):
                for index, raw in zip(positions, results):
                    if raw[0] == _DEFER:  # a full worker never defers; never pass it on
                        raw = [Status.ERROR.value, None, "sandbox error: a full-tier worker deferred a job"]
                    out[index] = raw
        return outputs

    def _run_on(self, worker_groups: list[list[WorkerProcess]], kind: str, work: list[list], limits: dict) -> list[list]:
        groups = [sum(worker_groups, [])] if len(work) == 1 else worker_groups
        outputs: list[list] = [[None] * len(items) for items in work]
        futures = []
        for index, (items, workers) in enumerate(zip(work, groups)):
            if not items:
                continue
            size = max(1, min(_MAX_CHUNK, -(-len(items) // (4 * len(workers)))))
            chunks: queue.SimpleQueue = queue.SimpleQueue()
            for start in range(0, len(items), size):
                chunks.put(start)
            for worker in workers:
                futures.append(
                    self._threads.submit(
                        _drain, worker, chunks, items, size, kind, limits, outputs[index]
                    )
                )
        for future in futures:
            future.result()
        return outputs

    def _started_full_groups(self) -> list[list[WorkerProcess]]:
        """The full-tier workers (same hash seeds and CPUs as the light groups), started
        now if this is their first use.

        Raises:
            SandboxError: they cannot be started.
        """
        if not self._full_groups[0]:
            for group, specs in zip(self._full_groups, self._worker_specs):
                group.extend(
                    WorkerProcess(seed, self._workdir, self._fork_loop, cpu, "full", self._key, self._restricted_root)
                    for seed, cpu in specs
                )
            workers = sum(self._full_groups, [])
            try:
                _start(workers)
            except BaseException:
                for worker in workers:
                    worker.stop()
                for group in self._full_groups:
                    group.clear()
                raise
        return self._full_groups

    def run_many(
        self,
        jobs: Sequence[tuple[str, str]],
        determinism_runs: int = 2,
        *,
        timeout: float | None = None,
        trusted: str | None = None,
    ) -> list[RunResult]:
        """Run ``f(*input)`` for every ``(program, input)`` job.

        Args:
            jobs: pairs of program source (defining ``f``) and the argument list as
                literal text (``"'abc', 3"``, ``""`` for no arguments).
            determinism_runs: runs per job, each in a fresh process, alternating between
                the two hash-seed groups; a job is ``OK`` only if all runs agree.
            timeout: override the executor's per-run time limit for this call.
            trusted: None (default), or ``"reference"``: the programs are a benchmark's
                reference solutions (trusted data, never model output, e.g. EvalPlus's,
                whose outputs are the expected ones) and pass the trusted policy of
                :meth:`check_many` (``determinism_runs=1`` only).

        Returns:
            One :class:`RunResult` per job, in order. ``output`` is the canonical repr of
            the returned value when the status is ``OK``.

        Raises:
            TypeError / ValueError: malformed jobs or arguments.
            SandboxError: the sandbox workers cannot be (re)started.
        """
        jobs = _check_jobs(jobs)
        if not isinstance(determinism_runs, int) or isinstance(determinism_runs, bool) or determinism_runs < 1:
            raise ValueError(f"determinism_runs must be an integer >= 1, got {determinism_runs!r}")
        if trusted not in (None, "reference") or (trusted is not None and determinism_runs != 1):
            raise ValueError(f"trusted must be None, or 'reference' with determinism_runs=1, got {trusted!r}")
        limits = self._limits(timeout)
        if not jobs:
            return []
        runs: list[list] = [[None] * determinism_runs for _ in jobs]
        with self._lock:
            kind, items = "run", [[program, text, *([trusted] if trusted else [])] for program, text in jobs]
            if self._key is not None and determinism_runs >= 2:
                # Prepare each job once (spread over all workers), then run the sealed
                # job in every run's own worker; a job that fails preparation has that
                # result in every run (preparation does not depend on the hash seed).
                (prepared,) = self._dispatch("prepare", [items], limits)
                kind, items = "run_tokens", []
                for index, raw in enumerate(prepared):
                    if raw[0] == Status.OK.value:
                        items.append(raw[1])
                    else:
                        runs[index] = [raw] * determinism_runs
                        items.append(None)
            work: list[list] = [[], []]
            slots: list[list[tuple[int, int]]] = [[], []]
            for run in range(determinism_runs):
                group = run % 2
                for index, item in enumerate(items):
                    if item is not None:
                        work[group].append(item)
                        slots[group].append((index, run))
            if determinism_runs == 1:
                work, slots = work[:1], slots[:1]
            outputs = self._dispatch(kind, work, limits)
        for group_slots, group_outputs in zip(slots, outputs):
            for (index, run), raw in zip(group_slots, group_outputs):
                runs[index][run] = raw
        return [_combine(job_runs) for job_runs in runs]

    def check_many(
        self, jobs: Sequence[Sequence[str | None]], *, timeout: float | None = None, trusted: str | None = None
    ) -> list[RunResult]:
        """Run each program, then its test, in one fresh sandboxed process per job.

        The job kind of code-generation benchmarks (HumanEval, MBPP, LiveCodeBench):
        *pass iff nothing raises within the limits*. Same isolation and limits as
        :meth:`run_many`, and the test passes the same static policy as the program
        (model-written code and the benchmark's test share one process). One run per
        job: a pass/fail needs no determinism check.

        Args:
            jobs: ``(program, test)``, ``(program, test, entry_point)`` or ``(program,
                test, entry_point, stdin)`` tuples. The program runs first; the test
                then runs in a fresh namespace where ``candidate`` is the program's
                ``entry_point`` (a function or class it defines; None or omitted: no
                candidate, ``candidate`` is None). With ``stdin`` (a string) the program
                runs as a script (``__name__ == "__main__"``) that may read it with
                ``input()`` or ``sys.stdin`` (a ``sys`` shim of streams and limits, for
                these jobs only) and the test also sees ``stdout``, the text it printed.
            timeout: override the executor's per-run time limit for this call.
            trusted: None (default): both parts pass the hardened policy. ``"test"``:
                the tests are a benchmark's own code (trusted data, never model output):
                they may import :data:`.policy.TRUSTED_MODULES` and ``eval`` literal
                expressions, with builtins and module shims of their own that the
                program cannot reach (:mod:`.trusted`); the program keeps the hardened
                policy. ``"reference"``: the programs are the benchmark's reference
                solutions and get the same trusted policy (no ``stdin`` jobs).

        Returns:
            One :class:`RunResult` per job, in order: ``OK`` (output ``""``) when the
            test passed; ``ERROR`` (the reason says whether the program raised or the
            test failed, and how), ``TIMEOUT``, ``MEMORY``, ``OUTPUT_LIMIT`` or
            ``REJECTED`` (the program or the test broke the policy) otherwise.

        Raises:
            TypeError: malformed jobs.
            SandboxError: the sandbox workers cannot be (re)started.
        """
        items = _check_check_jobs(jobs)
        if trusted not in (None, "test", "reference"):
            raise ValueError(f"trusted must be None, 'test' or 'reference', got {trusted!r}")
        if trusted is not None:
            if trusted == "reference" and any(item[3] is not None for item in items):
                raise ValueError("trusted='reference' is for function jobs, not stdin programs")
            items = [[*item, trusted] for item in items]
        limits = self._limits(timeout)
        if not items:
            return []
        with self._lock:
            (outputs,) = self._dispatch("check", [items], limits)
        return [_to_result(raw) for raw in outputs]

    def canonicalize_many(self, literals: Sequence[str]) -> list[RunResult]:
        """Parse model-written literal texts in the sandbox and return canonical reprs.

        Returns:
            One :class:`RunResult` per text: ``OK`` with the canonical repr, ``ERROR``
            when the text is not a literal, ``REJECTED`` when the value is not plain
            (``frozenset``, NaN, ...), ``OUTPUT_LIMIT`` when too long.

        Raises:
            TypeError: ``literals`` is not a sequence of strings.
        """
        if isinstance(literals, str) or not isinstance(literals, Sequence):
            raise TypeError("literals must be a sequence of strings, not a single string")
        items = list(literals)
        for position, text in enumerate(items):
            if not isinstance(text, str):
                raise TypeError(f"literal {position} must be a str, got {type(text).__name__}")
        if not items:
            return []
        with self._lock:
            (outputs,) = self._dispatch("literal", [items], self._limits(None))
        return [_to_result(raw) for raw in outputs]


def _start(workers: list[WorkerProcess]) -> None:
    """Launch every worker, then wait until each is ready (they start in parallel).

    Raises:
        SandboxError: one of them cannot start.
    """
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.wait_ready()


def _worker_cpus(count: int) -> list[int]:
    """CPUs for ``count`` workers (group 0 first): round robin over the CPUs this
    process may use, so every CPU gets an equal share of workers; all ``-1`` (no
    pinning) where affinity is not available."""
    try:
        available = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return [-1] * count
    return [available[index % len(available)] for index in range(count)]


def _drain(
    worker: WorkerProcess,
    chunks: queue.SimpleQueue,
    items: list,
    size: int,
    kind: str,
    limits: dict,
    out: list,
) -> None:
    while True:
        try:
            start = chunks.get_nowait()
        except queue.Empty:
            return
        out[start : start + size] = worker.process(kind, items[start : start + size], limits)


def check_options(workers: object, timeout: object, memory_mb: object, output_limit: object) -> None:
    """Raise ValueError naming the first out-of-range :class:`Executor` option.

    Public so that callers which start the executor lazily (the code environment) can
    reject bad options when they are given rather than at first use.
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    _check_timeout(timeout)
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or memory_mb < 64:
        raise ValueError(f"memory_mb must be an integer >= 64, got {memory_mb!r}")
    if isinstance(output_limit, bool) or not isinstance(output_limit, int) or output_limit < 1:
        raise ValueError(f"output_limit must be a positive integer, got {output_limit!r}")


def _check_timeout(timeout: object) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
        raise ValueError(f"timeout must be a positive number of seconds, at most 3600, got {timeout!r}")


def _check_jobs(jobs: object) -> list[tuple[str, str]]:
    if isinstance(jobs, (str, bytes)) or not isinstance(jobs, Sequence):
        raise TypeError("jobs must be a sequence of (program, input) pairs")
    checked = []
    for position, job in enumerate(jobs):
        if not isinstance(job, (tuple, list)) or len(job) != 2:
            raise TypeError(f"job {position} must be a (program, input) pair, got {job!r:.80}")
        program, text = job
        if not isinstance(program, str) or not isinstance(text, str):
            raise TypeError(
                f"job {position}: program and input must both be str, got "
                f"{type(program).__name__} and {type(text).__name__}"
            )
        checked.append((program, text))
    return checked


def _check_check_jobs(jobs: object) -> list[list]:
    """``check_many`` jobs as ``[program, test, entry_point, stdin]`` lists."""
    if isinstance(jobs, (str, bytes)) or not isinstance(jobs, Sequence):
        raise TypeError("jobs must be a sequence of (program, test[, entry_point[, stdin]]) tuples")
    checked = []
    for position, job in enumerate(jobs):
        if not isinstance(job, (tuple, list)) or not 2 <= len(job) <= 4:
            raise TypeError(
                f"job {position} must be a (program, test[, entry_point[, stdin]]) tuple, got {job!r:.80}"
            )
        program, test, entry_point, stdin = (*job, None, None)[:4]
        if not isinstance(program, str) or not isinstance(test, str):
            raise TypeError(
                f"job {position}: program and test must both be str, got "
                f"{type(program).__name__} and {type(test).__name__}"
            )
        if entry_point is not None and (not isinstance(entry_point, str) or not entry_point.isidentifier()):
            raise TypeError(f"job {position}: entry_point must be an identifier or None, got {entry_point!r:.80}")
        if stdin is not None and not isinstance(stdin, str):
            raise TypeError(f"job {position}: stdin must be a str or None, got {type(stdin).__name__}")
        checked.append([program, test, entry_point, stdin])
    return checked
