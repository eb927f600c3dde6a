"""``python -m absolutezero.plan [config=file.yaml] gpus=N gpu_memory_gb=G [key=value ...]``:
will a run fit in GPU memory?

Prints the memory per GPU part by part (weights, gradients, AdamW state, transient
buffers, activations with and without gradient checkpointing, logits, the generation
engine's weights and KV cache), the two phases of a step (generation, update) and
"fits" or "does not fit"; when it does not fit, the ``key=value`` settings that would
make it fit.

The run config is resolved exactly as ``python -m absolutezero.run`` resolves it (the
same ``config=`` file and ``key=value`` overrides, the same errors); ``gpus`` (default 1)
and ``gpu_memory_gb`` (default 80, in 10^9 bytes) are the planner's own arguments. The
arithmetic is the agent's: the core finds the agent class by name through the registry
(nothing is constructed, no weights are loaded) and calls its static method
``memory_plan(options, gpus, gpu_memory_gb)`` with the options the run would construct
it with (:func:`absolutezero.components.agent_kwargs`). An agent without one cannot be planned.

Exit codes: 0 a plan was printed (whether or not it fits); 2 a configuration mistake
(unknown key or model architecture, bad value, gpus < 1, an agent without a planner).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from absolutezero.config import ConfigError, did_you_mean

__all__ = ["PLAN_KEYS", "config_settings", "main", "plan", "usage"]

EXIT_CONFIG = 2
#: The planner's own arguments (not run-config keys), with their defaults.
PLAN_KEYS: dict[str, float] = {"gpus": 1, "gpu_memory_gb": 80.0}


def usage() -> str:
    return "\n".join(
        [
            "usage: python -m absolutezero.plan [config=file.yaml] [gpus=N] [gpu_memory_gb=G] [key=value ...]",
            "",
            "Memory per GPU, part by part, of the run the same arguments would start, and",
            "whether it fits; if not, the settings that would make it fit.",
            "",
            "  gpus           ranks, one GPU each (default 1)",
            "  gpu_memory_gb  memory per GPU in GB = 10^9 bytes (default 80)",
            "  key=value      any run-config key (see python -m absolutezero.run --help)",
            "",
            "examples:",
            "  python -m absolutezero.plan config=configs/qwen2.5-coder-7b.yaml gpus=4 gpu_memory_gb=80",
            "  python -m absolutezero.plan config=configs/qwen2.5-coder-3b.yaml gpus=2 agent_options.gradient_checkpointing=false",
            "",
            "exit codes: 0 plan printed (fits or not), 2 configuration error",
        ]
    )


def _split(arguments: Sequence[str]) -> tuple[dict[str, float], list[str]]:
    """The planner's own arguments and the run-config overrides."""
    own: dict[str, float] = dict(PLAN_KEYS)
    overrides: list[str] = []
    for text in arguments:
        key, sep, value = text.partition("=")
        key = key.strip()
        if sep and key in PLAN_KEYS:
            try:
                number = float(value)
            except ValueError:
                raise ConfigError(f"{key} must be a number, got {value!r}") from None
            if key == "gpus":
                if number != int(number) or number < 1:
                    raise ConfigError(f"gpus must be an integer >= 1, got {value!r}")
                number = int(number)
            elif not number > 0:
                raise ConfigError(f"gpu_memory_gb must be > 0, got {value!r}")
            own[key] = number
            continue
        if sep and "." not in key:
            hint = did_you_mean(key, list(PLAN_KEYS))
            if hint:
                raise ConfigError(f"unknown key {key!r}{hint}")
        overrides.append(text)
    return own, overrides


def config_settings(changes: Mapping[str, Any]) -> list[str]:
    """Agent option -> value changes as run-config ``key=value`` strings."""
    settings = []
    for option, value in changes.items():
        key = option if option in PLAN_KEYS else f"agent_options.{option}"
        shown = ("true" if value else "false") if isinstance(value, bool) else str(value)
        settings.append(f"{key}={shown}")
    return settings


def plan(arguments: Sequence[str]) -> Any:
    """The agent's memory plan for these command-line arguments.

    Raises:
        ConfigError: a configuration mistake (including an agent without ``memory_plan``).
    """
    from absolutezero.components import agent_kwargs, resolve_options
    from absolutezero.config import load_config
    from absolutezero.registry import EntryPointLoadError, UnknownNameError, load_agent_class

    own, overrides = _split(arguments)
    config = load_config(overrides)
    try:
        cls = load_agent_class(config.agent)
    except (UnknownNameError, EntryPointLoadError) as error:
        raise ConfigError(str(error)) from error
    planner = getattr(cls, "memory_plan", None)
    if not callable(planner):
        raise ConfigError(
            f"agent {config.agent!r} ({cls.__module__}.{cls.__qualname__}) has no memory planner: it needs a "
            "static method memory_plan(options, gpus, gpu_memory_gb)"
        )
    # the options as a run would construct the agent with: checked against its
    # declaration (a misspelt agent_options.<key> is a mistake here as in a run)
    options = agent_kwargs(resolve_options(config))
    return planner(options, int(own["gpus"]), float(own["gpu_memory_gb"]))


def _write(result: Any, out: TextIO) -> None:
    out.write(result.report() + "\n\n")
    peak = f"peak {result.total / 1e9:.2f} GB per GPU of {result.gpu_memory / 1e9:g} GB"
    if result.fits:
        out.write(f"fits ({peak})\n")
        return
    out.write(f"does not fit ({peak})\n")
    changes = dict(getattr(result, "suggestions", None) or {})
    fitted = getattr(result, "suggested_plan", None)
    if changes and fitted is not None and fitted.fits:
        out.write(
            "to fit, set: " + " ".join(config_settings(changes))
            + f"  (then peak {fitted.total / 1e9:.2f} GB per GPU, the {fitted.dominant_phase} phase dominates)\n"
        )
    else:
        tried = " ".join(config_settings(changes)) or "nothing applicable"
        out.write(f"no combination of the planner's settings fits (last tried: {tried})\n")


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    out = sys.stdout if out is None else out
    if any(a in ("-h", "--help", "help") for a in arguments):
        out.write(usage() + "\n")
        return 0
    try:
        result = plan(arguments)
    except ConfigError as error:
        sys.stderr.write(f"error: {error}\n")
        return EXIT_CONFIG
    _write(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
