"""The sandboxed executor spread over a Ray cluster: one node-local pool per node.

Why this shape: the sandbox's isolation, limits and determinism check all live in the
node-local :class:`~.pool.Executor` (warm forking workers in two hash-seed groups), and
none of that can cross a machine boundary. So :class:`RayExecutor` starts one Ray actor
per alive node, pinned there with node-affinity scheduling, and each actor owns one
ordinary ``Executor`` built with the same options. Every determinism run of a job happens
inside one actor, so a job's two runs still compare two processes with different hash
seeds and address layouts; a node only ever adds capacity, never changes a result.

The driver (the trainer) checks job shapes with the local executor's own checks, cuts the
batch into chunks, keeps two chunks in flight per actor (the second waits in the actor's
queue, so a node never idles between chunks) and reassembles results in input order. It
ships only job descriptions and receives plain ``(status, output, reason)`` tuples that
it turns back into its own :class:`~.results.RunResult` objects, so results are the very
types the local executor returns; no program is parsed or run in the driver.

Ray is an optional dependency (the ``ray`` extra); it is imported only when a
:class:`RayExecutor` is created.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import weakref
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from .forking import FORK_LOOPS
from .pool import Executor, SandboxError, _check_check_jobs, _check_jobs, _check_timeout, check_options
from .results import RunResult, Status

__all__ = ["RAY_MISSING", "NodeSandbox", "RayExecutor", "check_ray_options", "require_ray"]

#: The error text when Ray is selected but not installed.
RAY_MISSING = "env_options.executor=ray needs Ray: pip install -e '.[ray]'"

_IN_FLIGHT = 2  # chunks queued per actor: one running, one waiting in the actor's queue
_MAX_CHUNK = 512  # jobs per actor call at most (bounds the size of one Ray message)
_CLOSE_TIMEOUT = 30.0  # seconds to wait for an actor to stop its workers before killing it
_EXECUTOR_OPTIONS = ("fork_loop", "pin_workers", "module_tiers", "prepare_once", "restricted_python")


def require_ray() -> ModuleType:
    """The ``ray`` module.

    Raises:
        ImportError: Ray is not installed (the message names the extra to install).
    """
    try:
        import ray
    except ImportError as error:
        raise ImportError(RAY_MISSING) from error
    return ray


def check_ray_options(address: object = None, chunk_size: object = None, **executor_options: object) -> None:
    """Raise early, without importing or starting Ray, on options a :class:`RayExecutor`
    would refuse (the code environment calls this when it is constructed).

    Raises:
        ImportError: Ray is not installed.
        TypeError / ValueError: an option has the wrong type or is out of range.
    """
    if importlib.util.find_spec("ray") is None:
        raise ImportError(RAY_MISSING)
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise ValueError(f"ray_address must be a non-empty string such as 'ray://head:10001' or 'auto', got {address!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    unknown = sorted(set(executor_options) - set(_EXECUTOR_OPTIONS))
    if unknown:
        raise TypeError(f"unknown executor option(s) {', '.join(unknown)}; accepted: {', '.join(_EXECUTOR_OPTIONS)}")
    fork_loop = executor_options.get("fork_loop", "auto")
    if fork_loop not in FORK_LOOPS:
        raise ValueError(f"fork_loop must be one of {', '.join(FORK_LOOPS)}, got {fork_loop!r}")


class NodeSandbox:
    """The Ray actor body: one node's :class:`~.pool.Executor`.

    A plain class (Ray wraps it with ``ray.remote`` in :class:`RayExecutor`), so it is
    shipped by reference and every node runs the sandbox code installed there. Results go
    back as plain tuples: nothing of this node's objects has to unpickle in the driver.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        self._executor = Executor(**options)

    def info(self) -> dict[str, Any]:
        """Where this pool runs and what it started (also the actor's readiness check)."""
        return {
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "workers": self._executor.workers,
            "fork_loop": self._executor.fork_loop,
        }

    def worker_pids(self) -> list[int]:
        """Process ids of this node's live sandbox workers."""
        return self._executor.worker_pids()

    def run_many(self, jobs: list[tuple[str, str]], determinism_runs: int, timeout: float | None) -> list[tuple]:
        return _raw(self._executor.run_many(jobs, determinism_runs, timeout=timeout))

    def check_many(self, jobs: list[list], timeout: float | None, trusted: str | None = None) -> list[tuple]:
        return _raw(self._executor.check_many(jobs, timeout=timeout, trusted=trusted))

    def canonicalize_many(self, literals: list[str]) -> list[tuple]:
        return _raw(self._executor.canonicalize_many(literals))

    def close(self) -> None:
        self._executor.close()


def _raw(results: Sequence[RunResult]) -> list[tuple]:
    return [(result.status.value, result.output, result.reason) for result in results]


def _resolve_address(address: str | None) -> str:
    """The address to start or join: the given one, else ``RAY_ADDRESS``, else ``local``
    (a new single-machine cluster, even where ``ray start`` left one running)."""
    if address is not None:
        return address
    return os.environ.get("RAY_ADDRESS") or "local"


def _shutdown(ray: ModuleType, actors: list, owns_ray: bool) -> None:
    """Stop every actor's sandbox workers, kill the actors, and disconnect from (or stop)
    Ray only when this executor connected it. Tolerates a Ray already shut down (at
    interpreter exit Ray's own hook may run first)."""
    try:
        if ray.is_initialized():
            refs = [actor.close.remote() for actor in actors]
            ray.wait(refs, num_returns=len(refs), timeout=_CLOSE_TIMEOUT)
            for actor in actors:
                ray.kill(actor)
        if owns_ray and ray.is_initialized():
            ray.shutdown()
    except Exception:  # noqa: BLE001 - best-effort cleanup of a cluster that may be gone
        pass
    actors.clear()


class RayExecutor:
    """Runs sandbox jobs on a Ray cluster, one node-local :class:`~.pool.Executor` per node.

    A drop-in for :class:`~.pool.Executor` where the code environment and benchmarks use
    it: :meth:`run_many`, :meth:`check_many`, :meth:`canonicalize_many`, :meth:`close`,
    with the same arguments, validation errors and result objects.

    Args:
        workers, timeout, memory_mb, output_limit: as for :class:`~.pool.Executor`, per
            node (``workers=None``: half of each node's cores per hash-seed group).
        address: the cluster to join (``ray.init(address=...)``). ``None``: the one in
            ``RAY_ADDRESS`` if set, else a new local cluster. When Ray is already
            initialised in this process that session is used as it is.
        chunk_size: jobs per actor call; ``None`` sizes chunks so each actor gets about
            four (between 16 and 512 jobs each), enough to balance unequal nodes (on a
            one-node cluster: chunks of 512, as there is nothing to balance).
        **executor_options: ``fork_loop``, ``pin_workers``, ``module_tiers``,
            ``prepare_once``, ``restricted_python``, passed to every node's executor.

    The actors reserve no CPUs (``num_cpus=0``): each node's pool sizes itself by that
    node's cores, outside Ray's resource accounting, so give Ray other work there with
    that in mind. :meth:`close` kills the actors and shuts Ray down only when this object
    started or joined it.

    Raises:
        ImportError: Ray is not installed.
        TypeError / ValueError: a bad option.
        SandboxError: no alive node has CPUs, or a node's sandbox workers cannot start.
    """

    def __init__(
        self,
        workers: int | None = None,
        timeout: float = 1.0,
        memory_mb: int = 512,
        output_limit: int = 1_000_000,
        *,
        address: str | None = None,
        chunk_size: int | None = None,
        **executor_options: Any,
    ) -> None:
        check_options(workers, timeout, memory_mb, output_limit)
        check_ray_options(address, chunk_size, **executor_options)
        ray = require_ray()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.timeout = float(timeout)
        self.memory_mb = memory_mb
        self.output_limit = output_limit
        self._chunk_size = chunk_size
        self._ray = ray
        self._closed = False
        owns_ray = not ray.is_initialized()
        if owns_ray:
            ray.init(address=_resolve_address(address))
        self._actors: list = []
        self._finalizer = weakref.finalize(self, _shutdown, ray, self._actors, owns_ray)
        options = dict(executor_options, workers=workers, timeout=timeout, memory_mb=memory_mb, output_limit=output_limit)
        try:
            nodes = [node for node in ray.nodes() if node.get("Alive") and node.get("Resources", {}).get("CPU", 0) > 0]
            if not nodes:
                raise SandboxError("the Ray cluster has no alive node with CPUs for the sandbox")
            actor_class = ray.remote(num_cpus=0, max_restarts=0)(NodeSandbox)
            for node in nodes:
                strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
                self._actors.append(actor_class.options(scheduling_strategy=strategy).remote(options))
            self._nodes: list[dict[str, Any]] = [
                dict(info, node_id=node["NodeID"])
                for node, info in zip(nodes, self._get([actor.info.remote() for actor in self._actors]))
            ]
        except BaseException:
            self.close()
            raise

    # -- information -------------------------------------------------------------------

    @property
    def nodes(self) -> list[dict[str, Any]]:
        """One entry per node pool started: ``node_id``, ``hostname``, ``pid`` (the
        actor's), ``workers`` (per hash-seed group) and ``fork_loop``."""
        return [dict(node) for node in self._nodes]

    @property
    def workers(self) -> int:
        """Workers per hash-seed group, summed over all nodes."""
        return sum(node["workers"] for node in self._nodes)

    def worker_pids(self) -> list[int]:
        """Process ids of the live sandbox workers on every node (each valid on its own
        node only; for benchmarks on a single-machine cluster)."""
        return [pid for pids in self._get([actor.worker_pids.remote() for actor in self._actors]) for pid in pids]

    def __enter__(self) -> "RayExecutor":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every node's workers and kill the actors (and stop or leave Ray only if
        this executor started or joined it). Idempotent."""
        self._closed = True
        self._finalizer()

    # -- jobs --------------------------------------------------------------------------

    def run_many(
        self, jobs: Sequence[tuple[str, str]], determinism_runs: int = 2, *, timeout: float | None = None
    ) -> list[RunResult]:
        """:meth:`.pool.Executor.run_many` across the cluster: same arguments, errors and
        results, in input order; each job's determinism runs stay on one node."""
        items = _check_jobs(jobs)
        if not isinstance(determinism_runs, int) or isinstance(determinism_runs, bool) or determinism_runs < 1:
            raise ValueError(f"determinism_runs must be an integer >= 1, got {determinism_runs!r}")
        if timeout is not None:
            _check_timeout(timeout)
        return self._scatter(items, lambda actor, chunk: actor.run_many.remote(chunk, determinism_runs, timeout))

    def check_many(
        self, jobs: Sequence[Sequence[str | None]], *, timeout: float | None = None, trusted: str | None = None
    ) -> list[RunResult]:
        """:meth:`.pool.Executor.check_many` across the cluster (program, then its test,
        in one sandboxed process per job), results in input order; ``trusted`` as there."""
        items = _check_check_jobs(jobs)
        if trusted not in (None, "test", "reference"):
            raise ValueError(f"trusted must be None, 'test' or 'reference', got {trusted!r}")
        if timeout is not None:
            _check_timeout(timeout)
        return self._scatter(items, lambda actor, chunk: actor.check_many.remote(chunk, timeout, trusted))

    def canonicalize_many(self, literals: Sequence[str]) -> list[RunResult]:
        """:meth:`.pool.Executor.canonicalize_many` across the cluster."""
        if isinstance(literals, str) or not isinstance(literals, Sequence):
            raise TypeError("literals must be a sequence of strings, not a single string")
        items = list(literals)
        for position, text in enumerate(items):
            if not isinstance(text, str):
                raise TypeError(f"literal {position} must be a str, got {type(text).__name__}")
        return self._scatter(items, lambda actor, chunk: actor.canonicalize_many.remote(chunk))

    # -- dispatch ----------------------------------------------------------------------

    def _chunk(self, count: int) -> int:
        if self._chunk_size is not None:
            return self._chunk_size
        if len(self._actors) == 1:  # nothing to balance: fewer calls, fewer tails
            return min(_MAX_CHUNK, count)
        return max(16, min(_MAX_CHUNK, -(-count // (4 * len(self._actors)))))

    def _scatter(self, items: list, submit: Callable[[Any, list], Any]) -> list[RunResult]:
        """Run ``items`` in chunks over the live actors and return results in order.

        A chunk whose actor died (its node went away) goes to another actor: jobs have no
        side effects, so running one again cannot change its result.
        """
        if self._closed:
            raise RuntimeError("this RayExecutor is closed; create a new one")
        if not items:
            return []
        ray = self._ray
        size = self._chunk(len(items))
        waiting = list(range(0, len(items), size))[::-1]  # chunk starts, popped from the end
        live = list(self._actors)
        load = {id(actor): 0 for actor in live}
        pending: dict[Any, tuple[int, Any]] = {}
        out: list[RunResult | None] = [None] * len(items)
        while waiting or pending:
            for actor in live:
                while waiting and load[id(actor)] < _IN_FLIGHT:
                    start = waiting.pop()
                    pending[submit(actor, items[start : start + size])] = (start, actor)
                    load[id(actor)] += 1
            if not pending:
                raise SandboxError("every Ray sandbox actor has died; create a new RayExecutor")
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            start, actor = pending.pop(ref)
            load[id(actor)] -= 1
            try:
                raw = ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError):  # the node went away
                live = [other for other in live if other is not actor]
                self._actors[:] = [other for other in self._actors if other is not actor]
                waiting.append(start)
                continue
            except ray.exceptions.RayTaskError as error:
                raise SandboxError(f"a Ray sandbox node failed: {error}") from error
            out[start : start + len(raw)] = [RunResult(Status(status), output, reason) for status, output, reason in raw]
        return out  # type: ignore[return-value]

    def _get(self, refs: list) -> list:
        """``ray.get`` with node failures (an actor that died, could not be placed or
        raised) as :class:`SandboxError`."""
        ray = self._ray
        try:
            return ray.get(refs)
        except ray.exceptions.RayError as error:
            raise SandboxError(f"a Ray sandbox node failed: {error}") from error
