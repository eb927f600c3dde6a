"""The run's components and their options: check them, fill their defaults, describe them.

A run config names its components (``env``, ``agent``, ``trackers``) and carries each
one's options in its own section (``env_options``, ``agent_options``,
``plugin_options.<tracker>``). The core knows none of those options: each component
declares its own (:mod:`absolutezero.options`). This module loads the chosen classes
by name, checks each section against its declaration (unknown names with did-you-mean,
wrong types, missing required options) and writes the declared defaults into the config,
so that the saved ``config.yaml`` records every value the run used and a resumed or
re-run config does not depend on the defaults of a later version.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from absolutezero.config import ConfigError
from absolutezero.options import check_options, defaults, describe, run_provided

__all__ = ["agent_kwargs", "component_help", "env_kwargs", "plugin_option_declarations", "resolve_options"]


def _load(kind: str, name: str) -> type:
    from absolutezero.registry import EntryPointLoadError, UnknownNameError, load_agent_class
    from absolutezero.registry import load_environment_class, load_tracker_class

    loaders = {"environment": load_environment_class, "agent": load_agent_class, "tracker": load_tracker_class}
    try:
        return loaders[kind](name)
    except (UnknownNameError, EntryPointLoadError) as error:
        raise ConfigError(str(error)) from error


def _section(config: DictConfig, key: str) -> dict[str, Any]:
    node = OmegaConf.select(config, key)
    if node is None:
        return {}
    values = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    if not isinstance(values, dict):
        raise ConfigError(f"{key} must be a mapping of options, got {values!r}")
    return values


def _serialisable(value: Any) -> bool:
    try:
        OmegaConf.create({"v": value})
    except Exception:
        return False
    return True


def resolve_options(config: DictConfig) -> DictConfig:
    """Check the environment's, agent's and trackers' options; fill in their defaults.

    Returns the same config, with ``env_options`` and ``agent_options`` holding every
    declared option (given values over declared defaults).

    Raises:
        ConfigError: an unknown component, or options that do not fit its declaration.
    """
    if not str(config.env):
        from absolutezero.registry import environment_names

        raise ConfigError(
            "env= names the environment to self-play in, e.g. env=code; installed: "
            + ", ".join(environment_names())
        )
    for kind, name_key, section in (("environment", "env", "env_options"), ("agent", "agent", "agent_options")):
        name = str(config[name_key])
        cls = _load(kind, name)
        given = check_options(cls, _section(config, section), f"{kind} {name!r}", prefix=f"{section}.")
        filled = {key: value for key, value in defaults(cls).items() if _serialisable(value)}
        filled.update(given)
        config[section] = OmegaConf.create(filled)
    plugin_options = _section(config, "plugin_options")
    for name in dict.fromkeys(str(name) for name in config.trackers):
        cls = _load("tracker", name)
        check_options(cls, plugin_options.get(name) or {}, f"tracker {name!r}", prefix=f"plugin_options.{name}.")
    return config


def _kwargs(config: DictConfig, section: str, kind: str, name: str) -> dict[str, Any]:
    cls = _load(kind, name)
    options = check_options(cls, _section(config, section), f"{kind} {name!r}", prefix=f"{section}.")
    return {**options, **run_provided(cls, {"seed": int(config.seed)})}


def env_kwargs(config: DictConfig) -> dict[str, Any]:
    """Constructor keywords of the run's environment: its options (+ the run's seed if it takes one)."""
    return _kwargs(config, "env_options", "environment", str(config.env))


def agent_kwargs(config: DictConfig) -> dict[str, Any]:
    """Constructor keywords of the run's agent: its options (+ the run's seed if it takes one)."""
    return _kwargs(config, "agent_options", "agent", str(config.agent))


def plugin_option_declarations() -> list[tuple[str, type]]:
    """``(name, OPTIONS)`` of each entry-point plugin that declares its options.

    A plugin that takes options (``plugin_options.<name>.*``) sets a module attribute
    ``OPTIONS``: a class (e.g. a dataclass) whose keyword arguments are the options, with
    one help line each in its docstring's ``Args:`` section. The plugin checks the values
    itself when the run starts; the core only lists them (``--help``, the reference page).
    """
    import importlib.metadata

    from absolutezero.hookspecs import PROJECT_NAME

    found = []
    for entry in sorted(importlib.metadata.entry_points(group=PROJECT_NAME), key=lambda e: e.name):
        try:
            plugin = entry.load()
        except Exception:  # a broken plugin is reported when a run loads it, not in help
            continue
        options = getattr(plugin, "OPTIONS", None)
        if isinstance(options, type):
            found.append((entry.name, options))
    return found


def component_help(env: str, agent: str, trackers: list[str] | tuple[str, ...] = ()) -> list[str]:
    """``--help`` lines listing the chosen components' options with default and help."""
    lines: list[str] = []
    chosen = [("environment", env, "env_options."), ("agent", agent, "agent_options.")]
    chosen += [("tracker", name, f"plugin_options.{name}.") for name in trackers]
    for kind, name, prefix in chosen:
        try:
            cls = _load(kind, name)
        except ConfigError as error:
            lines += ["", f"{kind} {name!r}: {error}"]
            continue
        rows = describe(cls, prefix)
        lines += ["", f"{kind} {name!r} options ({cls.__module__}.{cls.__qualname__}):"]
        if not rows:
            lines.append("  (none)")
        lines += _rows(rows)
    for name, options in plugin_option_declarations():
        lines += ["", f"plugin {name!r} options ({options.__module__}.{options.__qualname__}):"]
        lines += _rows(describe(options, f"plugin_options.{name}."))
    return lines


def _rows(rows: list[tuple[str, str, str, str]]) -> list[str]:
    lines = []
    for key, type_name, default, help_text in rows:
        lines.append(f"  {key} = {default}  [{type_name}]")
        if help_text:
            lines.append(f"      {help_text}")
    return lines
