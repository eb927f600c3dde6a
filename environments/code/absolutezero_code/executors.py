"""The code environment's executor factories: its own extension point.

``env_options.executor=<name>`` picks the factory that builds the sandbox the code
environment sends programs to. Two are built in (``builtin``: the local sandbox pool;
``ray``: the same sandbox on a Ray cluster). Other packages add theirs through the
entry-point group :data:`ENTRY_POINT_GROUP` (``absolutezero_code.executors``), e.g.::

    [project.entry-points."absolutezero_code.executors"]
    firecracker = "my_package.sandbox:FirecrackerExecutor"

A factory is called with the keywords ``workers``, ``timeout``, ``memory_mb`` and
``output_limit`` and returns an object with the executor interface
(:class:`absolutezero_code.tasks.ExecutorLike`). The extension point belongs to the code
environment because only it runs programs; the core's plugin manager knows nothing of
it, and there is no second plugin manager.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Callable
from typing import Any

__all__ = ["BUILTIN_EXECUTOR", "ENTRY_POINT_GROUP", "RAY_EXECUTOR", "executor_factory", "executor_names"]

BUILTIN_EXECUTOR = "builtin"
RAY_EXECUTOR = "ray"
ENTRY_POINT_GROUP = "absolutezero_code.executors"


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in (BUILTIN_EXECUTOR, RAY_EXECUTOR):
            raise ValueError(
                f"a package registers an executor named {entry.name!r} ({entry.value}) in "
                f"{ENTRY_POINT_GROUP}; that name is built in, pick another"
            )
        previous = found.get(entry.name)
        if previous is not None and previous.value != entry.value:
            raise ValueError(
                f"two packages register an executor named {entry.name!r} in {ENTRY_POINT_GROUP}: "
                f"{previous.value} and {entry.value}"
            )
        found[entry.name] = entry
    return found


def executor_names() -> list[str]:
    """Every executor name ``env_options.executor`` accepts (nothing is imported)."""
    return [BUILTIN_EXECUTOR, RAY_EXECUTOR, *sorted(_entry_points())]


def executor_factory(name: str, ray_address: str | None = None) -> Callable[..., Any]:
    """The factory registered as ``name``.

    Raises:
        ValueError: an unknown name (with did-you-mean and the available names), or a
            registered target that does not import or is not callable.
    """
    if name == BUILTIN_EXECUTOR:
        from absolutezero_code.executor import Executor

        return Executor
    if name == RAY_EXECUTOR:
        from absolutezero_code.executor.ray_pool import RayExecutor

        return functools.partial(RayExecutor, address=ray_address)
    entries = _entry_points()
    if name not in entries:
        from absolutezero.config import did_you_mean

        known = executor_names()
        raise ValueError(
            f"unknown executor {name!r}{did_you_mean(name, known)} (available: {', '.join(known)}; "
            f"packages add executors through the entry-point group {ENTRY_POINT_GROUP!r})"
        )
    try:
        factory = entries[name].load()
    except Exception as error:
        raise ValueError(f"executor {name!r} ({entries[name].value}) failed to import: {error}") from error
    if not callable(factory):
        raise ValueError(f"executor {name!r} ({entries[name].value}) is not callable")
    return factory
