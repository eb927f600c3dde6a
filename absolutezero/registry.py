"""Find environments, agents and benchmarks by name through entry points.

The core never imports a concrete environment or agent: built-ins and third-party
packages alike declare entry points in their distribution metadata, e.g.::

    [project.entry-points."absolutezero.environments"]
    arith = "absolutezero_arith.env:ArithEnvironment"

Listing names (:func:`environment_names`, :func:`entries`) only reads metadata; the module
behind a name is imported when it is loaded (:func:`load_environment_class`), so a
broken or heavy environment never slows down or breaks the others.

A name must be unique within its group: two *different* distributions declaring the same
name is an error (:class:`DuplicateNameError`) rather than a silent, install-order
dependent choice. The same distribution found twice on ``sys.path`` (an editable install
plus a source checkout) counts once, as in :func:`importlib.metadata.entry_points`.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from absolutezero.config import ConfigError, did_you_mean
from absolutezero.protocol import Agent, Environment

__all__ = [
    "BENCHMARK_GROUP",
    "TRACKER_GROUP",
    "ENVIRONMENT_GROUP",
    "AGENT_GROUP",
    "DuplicateNameError",
    "EntryPointLoadError",
    "RegisteredEntry",
    "UnknownNameError",
    "agent_names",
    "benchmark_names",
    "check_options",
    "entries",
    "environment_names",
    "gym_id",
    "load_agent_class",
    "load_benchmark_class",
    "load_environment_class",
    "load_tracker_class",
    "make_agent",
    "make_environment",
    "make_tracker",
    "tracker_names",
    "register_gym_environments",
]

ENVIRONMENT_GROUP = "absolutezero.environments"
AGENT_GROUP = "absolutezero.agents"
BENCHMARK_GROUP = "absolutezero.benchmarks"
TRACKER_GROUP = "absolutezero.trackers"

#: kind (as used in messages) -> entry-point group
GROUPS: dict[str, str] = {
    "environment": ENVIRONMENT_GROUP,
    "agent": AGENT_GROUP,
    "benchmark": BENCHMARK_GROUP,
    "tracker": TRACKER_GROUP,
}

GYM_NAMESPACE = "absolutezero"


class UnknownNameError(LookupError):
    """No registered entry has this name; the message suggests the closest one."""


class DuplicateNameError(LookupError):
    """Two different distributions register the same name in one group."""


class EntryPointLoadError(ImportError):
    """A registered entry point could not be imported or is not the right kind of object."""


@dataclass(frozen=True)
class RegisteredEntry:
    """One registered name, described from metadata alone (nothing imported).

    ``value`` is the entry point's ``module:attribute`` target; ``distribution`` and
    ``version`` name the installed package that declares it (``"?"`` when unknown).
    """

    kind: str
    name: str
    value: str
    distribution: str
    version: str
    entry_point: importlib.metadata.EntryPoint

    @property
    def module(self) -> str:
        """The import path of the module that :meth:`load` imports."""
        return self.entry_point.module

    def load(self) -> Any:
        """Import the target and return it.

        Raises:
            EntryPointLoadError: the module or attribute cannot be imported; the message
                names the entry, its target and distribution, and the original error is
                chained.
        """
        try:
            return self.entry_point.load()
        except Exception as error:  # any import-time failure of third-party code
            raise EntryPointLoadError(
                f"cannot load {self.kind} {self.name!r} = {self.value!r} from distribution "
                f"{self.distribution} {self.version}: {type(error).__name__}: {error}"
            ) from error


def _check_kind(kind: str) -> str:
    if kind not in GROUPS:
        raise ValueError(f"unknown registry kind {kind!r}; expected one of {sorted(GROUPS)}")
    return GROUPS[kind]


def entries(kind: str) -> dict[str, RegisteredEntry]:
    """All registered entries of ``kind`` (``"environment"``, ``"agent"``, ``"benchmark"``,
    ``"tracker"``).

    Reads distribution metadata only; no registered module is imported. The search is
    done on every call, so packages installed (or added to ``sys.path``) while the
    process runs are found.

    Returns:
        name -> :class:`RegisteredEntry`, sorted by name.

    Raises:
        DuplicateNameError: two different distributions declare the same name.
    """
    group = _check_kind(kind)
    found: dict[str, RegisteredEntry] = {}
    for entry_point in importlib.metadata.entry_points(group=group):
        dist = entry_point.dist
        dist_name = (dist.metadata["Name"] or "?") if dist is not None else "?"
        version = (dist.version or "?") if dist is not None else "?"
        entry = RegisteredEntry(
            kind=kind,
            name=entry_point.name,
            value=entry_point.value,
            distribution=dist_name,
            version=version,
            entry_point=entry_point,
        )
        previous = found.get(entry.name)
        if previous is not None:
            raise DuplicateNameError(
                f"{kind} name {entry.name!r} is registered twice in entry-point group "
                f"{group!r}: by {previous.distribution} {previous.version} "
                f"({previous.value}) and by {entry.distribution} {entry.version} "
                f"({entry.value}); uninstall one of them or rename its entry point"
            )
        found[entry.name] = entry
    return dict(sorted(found.items()))


def _entry(kind: str, name: str) -> RegisteredEntry:
    known = entries(kind)
    if name not in known:
        hint = did_you_mean(str(name), list(known))
        listing = ", ".join(known) if known else "none installed"
        raise UnknownNameError(
            f"unknown {kind} {name!r}{hint} (registered {kind}s: {listing}; third-party "
            f"packages register under the entry-point group {GROUPS[kind]!r})"
        )
    return known[name]


def environment_names() -> list[str]:
    """Names of all registered environments, sorted; imports nothing."""
    return list(entries("environment"))


def agent_names() -> list[str]:
    """Names of all registered agents, sorted; imports nothing."""
    return list(entries("agent"))


def benchmark_names() -> list[str]:
    """Names of all registered benchmarks, sorted; imports nothing."""
    return list(entries("benchmark"))


def tracker_names() -> list[str]:
    """Names of all registered experiment trackers, sorted; imports nothing."""
    return list(entries("tracker"))


def _load_class(kind: str, name: str, base: type | None) -> type:
    entry = _entry(kind, name)
    target = entry.load()
    if not inspect.isclass(target):
        raise EntryPointLoadError(
            f"{kind} {name!r} = {entry.value!r} ({entry.distribution}) is a "
            f"{type(target).__name__}, not a class"
        )
    if base is not None and not issubclass(target, base):
        raise EntryPointLoadError(
            f"{kind} {name!r} = {entry.value!r} ({entry.distribution}) must subclass "
            f"{base.__module__}.{base.__qualname__}"
        )
    return target


def load_environment_class(name: str) -> type[Environment]:
    """Import and return the :class:`Environment` subclass registered as ``name``.

    Raises:
        UnknownNameError: no such environment (with a did-you-mean suggestion).
        EntryPointLoadError: the module failed to import or the target is not an
            Environment subclass.
    """
    return _load_class("environment", name, Environment)


def load_agent_class(name: str) -> type[Agent]:
    """Import and return the :class:`Agent` subclass registered as ``name``.

    Raises:
        UnknownNameError, EntryPointLoadError: as for :func:`load_environment_class`.
    """
    return _load_class("agent", name, Agent)


def load_benchmark_class(name: str) -> type:
    """Import and return the benchmark class registered as ``name``.

    Raises:
        UnknownNameError, EntryPointLoadError: as for :func:`load_environment_class`.
    """
    return _load_class("benchmark", name, None)


def load_tracker_class(name: str) -> type:
    """Import and return the experiment-tracker class registered as ``name``.

    Raises:
        UnknownNameError, EntryPointLoadError: as for :func:`load_environment_class`.
    """
    return _load_class("tracker", name, None)


def check_options(cls: type, options: Mapping[str, Any], what: str) -> None:
    """Check ``options`` against ``cls``'s declared options (:func:`absolutezero.options.check_options`).

    Done before construction so that a misspelt option is reported as a configuration
    mistake naming the option, while a ``TypeError`` raised *inside* a constructor still
    surfaces unchanged as the bug it is.

    Raises:
        ConfigError: an unknown option (with did-you-mean and the accepted options), a
            value of the wrong type, or a required option that is missing. Run-provided
            keywords (``seed``) pass when the constructor takes them.
    """
    from absolutezero.options import check_options as check_declared
    from absolutezero.options import run_provided

    if not isinstance(options, Mapping):
        raise ConfigError(f"options for {what} must be a mapping, got {type(options).__name__}")
    provided = run_provided(cls, options)  # e.g. the run's seed, for a constructor that takes one
    check_declared(cls, {key: value for key, value in options.items() if key not in provided}, what)


def make_environment(name: str, options: Mapping[str, Any] | None = None) -> Environment:
    """Construct the environment registered as ``name`` with keyword ``options``.

    Returns:
        A new :class:`Environment` instance; the caller owns it and should ``close()`` it.

    Raises:
        UnknownNameError, EntryPointLoadError: see :func:`load_environment_class`.
        ConfigError: an option the constructor does not take, or a required one missing.
    """
    options = {} if options is None else options
    cls = load_environment_class(name)
    check_options(cls, options, f"environment {name!r}")
    return cls(**dict(options))


def make_agent(name: str, options: Mapping[str, Any]) -> Agent:
    """Construct the agent registered as ``name`` with keyword ``options``.

    Raises:
        UnknownNameError, EntryPointLoadError: see :func:`load_agent_class`.
        ConfigError: an option the constructor does not take, or a required one missing.
    """
    cls = load_agent_class(name)
    check_options(cls, options, f"agent {name!r}")
    return cls(**dict(options))


def make_tracker(name: str, options: Mapping[str, Any] | None = None) -> Any:
    """Construct the experiment tracker registered as ``name`` with keyword ``options``.

    Returns:
        A plugin object implementing the run-start, step-metrics and run-end hooks.

    Raises:
        UnknownNameError, EntryPointLoadError: see :func:`load_tracker_class`.
        ConfigError: an option the constructor does not take, or the tracker's package is
            not installed (the message names the extra to install).
    """
    options = {} if options is None else options
    cls = load_tracker_class(name)
    check_options(cls, options, f"tracker {name!r}")
    return cls(**dict(options))


def gym_id(name: str) -> str:
    """The Gymnasium id of environment ``name``: ``absolutezero/<Name>-v0``.

    ``Name`` is the entry-point name with its first letter upper-cased (``code`` ->
    ``absolutezero/Code-v0``).
    """
    return f"{GYM_NAMESPACE}/{name[:1].upper()}{name[1:]}-v0"


def register_gym_environments() -> list[str]:
    """Register a Gymnasium id for every registered environment that lacks one.

    Called by ``import absolutezero``; call it again after installing a package at run
    time. Registration is lazy: the id points at the adapter by import string and the
    environment module is imported only by ``gymnasium.make``. Names that do not form a
    valid Gymnasium id are skipped, as is a broken (duplicate) registry, so that importing
    the package never fails because of a third-party distribution.

    Returns:
        The ids newly registered by this call.
    """
    import gymnasium

    try:
        names = environment_names()
    except DuplicateNameError:
        return []  # reported with a clear message when the name is actually used
    added: list[str] = []
    for name in names:
        env_id = gym_id(name)
        if env_id in gymnasium.registry:
            continue
        try:
            gymnasium.register(
                id=env_id,
                entry_point="absolutezero.gym_adapter:AbsoluteZeroEnv",
                kwargs={"environment": name},
            )
        except gymnasium.error.Error:
            continue
        added.append(env_id)
    return added
