"""The plugin manager and the helpers the self-play loop calls hooks through.

Plugins come from two places:

* the entry-point group ``absolutezero`` of every installed distribution (autoload),
  unless the environment variable ``ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD`` is set to any
  non-empty value (useful for reproducible runs and tests);
* ``extra_modules``: import paths from the run config's ``plugins=`` list, either a module
  (``my_pkg.my_plugin``) or an object inside one (``my_pkg.my_plugin:MONITOR``).

A plugin that cannot be imported, or that implements a hook name that does not exist
(usually a typo), stops the run with a :class:`PluginLoadError` naming it: silently
running without a safety monitor someone asked for would be worse.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pluggy

from absolutezero import hookspecs
from absolutezero.protocol import ROLES, Task

__all__ = [
    "AUTOLOAD_ENV_VAR",
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "PluginLoadError",
    "autoload_disabled",
    "extra_metrics",
    "filter_answer",
    "filter_proposal",
    "get_plugin_manager",
    "plugin_infos",
    "reward_bonus",
    "run_summary",
]

ENTRY_POINT_GROUP = "absolutezero"
AUTOLOAD_ENV_VAR = "ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD"


class PluginLoadError(ImportError):
    """A plugin could not be imported or does not match the hook specifications."""


@dataclass(frozen=True)
class PluginInfo:
    """Where a registered plugin came from.

    ``source`` is ``"entry point"`` (autoloaded; ``distribution``/``version`` set),
    ``"module"`` (from ``extra_modules``) or ``"registered"`` (added later by code).
    """

    name: str
    source: str
    target: str
    distribution: str = ""
    version: str = ""


class _PluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers where each plugin came from (for ``list``)."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.origins: dict[str, PluginInfo] = {}


def autoload_disabled() -> bool:
    """True when ``ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD`` is set to a non-empty value."""
    return bool(os.environ.get(AUTOLOAD_ENV_VAR, ""))


def _load_entry_points(pm: _PluginManager) -> None:
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.has_plugin(entry_point.name) or pm.is_blocked(entry_point.name):
            continue
        dist = entry_point.dist
        dist_name = (dist.metadata["Name"] or "?") if dist is not None else "?"
        version = (dist.version or "?") if dist is not None else "?"
        try:
            plugin = entry_point.load()
        except Exception as error:  # third-party import-time failure
            raise PluginLoadError(
                f"cannot load plugin {entry_point.name!r} = {entry_point.value!r} from "
                f"distribution {dist_name} {version}: {type(error).__name__}: {error} "
                f"(set {AUTOLOAD_ENV_VAR}=1 to skip plugin autoload)"
            ) from error
        _register(pm, plugin, entry_point.name)
        pm.origins[entry_point.name] = PluginInfo(
            entry_point.name, "entry point", entry_point.value, dist_name, version
        )


def _import_target(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    if not module_name or (":" in path and not attribute):
        raise PluginLoadError(
            f"bad plugin path {path!r}: use an import path like 'my_pkg.my_plugin' or "
            "'my_pkg.my_plugin:PLUGIN_OBJECT'"
        )
    try:
        target = importlib.import_module(module_name)
    except Exception as error:
        raise PluginLoadError(
            f"cannot import plugin module {module_name!r} (from plugins={path!r}): "
            f"{type(error).__name__}: {error}; check the spelling and that its package is "
            "installed in this environment"
        ) from error
    if attribute:
        try:
            for part in attribute.split("."):
                target = getattr(target, part)
        except AttributeError:
            raise PluginLoadError(
                f"plugin module {module_name!r} has no attribute {attribute!r} "
                f"(from plugins={path!r})"
            ) from None
    return target


def _register(pm: pluggy.PluginManager, plugin: Any, name: str) -> None:
    if pm.is_registered(plugin):
        return  # e.g. autoloaded and also named in plugins=
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as error:
        raise PluginLoadError(f"plugin {name!r} does not fit the hook specifications: {error}") from error
    # An implementation named absolutezero_* without a spec is almost always a typo.
    for hook_name in dir(pm.hook):
        if hook_name.startswith("_"):
            continue
        caller = getattr(pm.hook, hook_name)
        if caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and not impl.optionalhook:
                known = sorted(n for n in dir(hookspecs) if n.startswith("absolutezero_"))
                from absolutezero.config import did_you_mean

                pm.unregister(plugin)
                raise PluginLoadError(
                    f"plugin {name!r} implements unknown hook {hook_name!r}"
                    f"{did_you_mean(hook_name, known)} (known hooks: {', '.join(known)})"
                )


def get_plugin_manager(extra_modules: Sequence[str] = ()) -> pluggy.PluginManager:
    """A new plugin manager with the hook specs, autoloaded plugins and ``extra_modules``.

    Each call builds a fresh manager (no process-wide state), so two runs in one process
    do not share plugins.

    Returns:
        A :class:`pluggy.PluginManager`; call hooks with keyword arguments, or use the
        helpers of this module.

    Raises:
        PluginLoadError: a plugin cannot be imported, a path is malformed, or a plugin
            implements a hook that does not exist.
    """
    if isinstance(extra_modules, str):
        raise TypeError("extra_modules must be a sequence of import paths, not one string")
    pm = _PluginManager()
    if not autoload_disabled():
        _load_entry_points(pm)
    for path in extra_modules:
        plugin = _import_target(str(path))
        _register(pm, plugin, str(path))
        pm.origins.setdefault(str(path), PluginInfo(str(path), "module", str(path)))
    return pm


def plugin_infos(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Where each plugin registered in ``pm`` came from, in registration order."""
    origins: dict[str, PluginInfo] = getattr(pm, "origins", {})
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        target = getattr(plugin, "__name__", type(plugin).__name__)
        infos.append(origins.get(name, PluginInfo(name, "registered", target)))
    return infos


def filter_proposal(pm: pluggy.PluginManager, task: Task, response: str) -> str | None:
    """The first plugin reason to reject a validated proposal, or ``None`` to accept it."""
    reasons = pm.hook.absolutezero_filter_proposal(task=task, response=response)
    return _first_reason(reasons, "absolutezero_filter_proposal")


def filter_answer(pm: pluggy.PluginManager, task: Task, response: str) -> str | None:
    """The first plugin reason to zero a solver answer, or ``None`` to verify it normally."""
    reasons = pm.hook.absolutezero_filter_answer(task=task, response=response)
    return _first_reason(reasons, "absolutezero_filter_answer")


def _first_reason(reasons: list[Any], hook: str) -> str | None:
    for reason in reasons:
        if not isinstance(reason, str):
            raise TypeError(f"a plugin's {hook} returned {reason!r}; it must return a str or None")
        if reason:
            return reason
    return None


def reward_bonus(
    pm: pluggy.PluginManager, role: str, task: Task | None, response: str, reward: float
) -> float:
    """The sum of all plugins' reward terms for one sample (0.0 when none apply).

    Raises:
        ValueError: ``role`` is not ``"propose"`` or ``"solve"``.
        TypeError: a plugin returned something that is not a real number.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    terms = pm.hook.absolutezero_reward_terms(role=role, task=task, response=response, reward=reward)
    total = 0.0
    for term in terms:
        if isinstance(term, bool) or not isinstance(term, (int, float)):
            raise TypeError(f"a plugin's absolutezero_reward_terms returned {term!r}; it must return a number or None")
        total += float(term)
    return total


def extra_metrics(pm: pluggy.PluginManager, step: int, taken: Collection[str] = ()) -> dict[str, float]:
    """Every plugin's ``absolutezero_extra_metrics`` for ``step``, merged.

    Args:
        taken: names already in the step's record (the core's).

    Raises:
        TypeError: a plugin returned something other than a mapping of names to numbers.
        ValueError: a plugin set a name in ``taken`` or one another plugin set.
    """
    merged: dict[str, float] = {}
    for contribution in pm.hook.absolutezero_extra_metrics(step=step):
        if not isinstance(contribution, Mapping):
            raise TypeError(
                f"a plugin's absolutezero_extra_metrics returned {type(contribution).__name__}; "
                "it must return a dict of metric name -> number, or None"
            )
        for name, value in contribution.items():
            if not isinstance(name, str) or isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"absolutezero_extra_metrics returned {name!r}: {value!r}; expected str -> number")
            if name in taken or name in merged:
                raise ValueError(f"a plugin's absolutezero_extra_metrics sets {name!r}, which is already set")
            merged[name] = float(value)
    return merged


def run_summary(pm: pluggy.PluginManager, run_dir: str, status: str) -> list[str]:
    """Every plugin's lines for the run's final message, in hook call order.

    Raises:
        TypeError: a plugin returned something other than a list of strings.
    """
    lines: list[str] = []
    for contribution in pm.hook.absolutezero_run_summary(run_dir=run_dir, status=status):
        if isinstance(contribution, str) or not isinstance(contribution, (list, tuple)) or not all(
            isinstance(line, str) for line in contribution
        ):
            raise TypeError(f"a plugin's absolutezero_run_summary returned {contribution!r}; expected a list of str")
        lines.extend(contribution)
    return lines
