"""Evaluate a model on registered benchmarks (CruxEval-O / CruxEval-I, HumanEval, ...).

Command line::

    python -m absolutezero.evaluate benchmark=cruxeval-o model=embedded limit=100
    python -m absolutezero.evaluate benchmark=cruxeval-o,cruxeval-i model=runs/code-1 \\
        samples=10 k=5 temperature=0.8 out=evals/after
    python -m absolutezero.evaluate benchmark=paper model=Qwen/Qwen2.5-7B prompt=native

A paired comparison of two finished evaluations (same problems, same decoding; see
:mod:`absolutezero.paired`)::

    python -m absolutezero.evaluate compare=evals/before,evals/after

``model`` is an embedded model (``embedded`` = Qwen2.5-Coder-0.5B-Instruct, or ``smollm2-135m``), a Hugging Face name or folder, or a
self-play run / checkpoint folder (its latest, or given, checkpoint's saved agent folder
is loaded as the model, with the run's agent options). The self-play loop calls
:func:`evaluate` with its live agent.

The core never imports a benchmark package: benchmarks are found by name through the
``absolutezero.benchmarks`` entry points. A benchmark class follows this protocol:

* ``cls(path: str | None = None, env_options: Mapping | None = None, prompt: str = "azr")``;
  ``.name`` (``prompt`` is ``azr``, the training's think/answer wrapper, or ``native``,
  the model's own chat template and the benchmark's usual instruction);
* ``.run(agent, limit, seed, k, samples, model, progress)`` -> a result with
  ``.metrics() -> dict[str, float]`` and ``.summary() -> dict``; ``.close()``;
* ``cls.format_table(results) -> str`` and ``cls.write_results(out_dir, results, settings)``;
* optional ``cls.check_path(path)``: raise ValueError early when the data is missing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from absolutezero.config import ConfigError, _yaml_value, did_you_mean
from absolutezero.protocol import Agent
from absolutezero.registry import UnknownNameError, load_benchmark_class

__all__ = ["PROMPT_STYLES", "EvalArgs", "agent_decoding", "evaluate", "main", "parse_args"]

#: Prompt styles a benchmark may be asked for (``prompt=``).
PROMPT_STYLES = ("azr", "native")

EXIT_USAGE = 2
EXIT_FAILURE = 1


def _names(benchmark: str | Sequence[str]) -> list[str]:
    names = [benchmark] if isinstance(benchmark, str) else list(benchmark)
    names = [part.strip() for name in names for part in str(name).split(",") if part.strip()]
    if not names:
        raise ConfigError("benchmark is empty; pass e.g. benchmark=cruxeval-o or benchmark=cruxeval-o,cruxeval-i")
    return names


def evaluate(
    benchmark: str | Sequence[str],
    agent: Agent,
    path: str | None = None,
    limit: int | None = None,
    k: int = 1,
    samples: int = 1,
    out_dir: str | None = None,
    seed: int | None = None,
    model: str = "",
    env_options: Mapping[str, Any] | None = None,
    progress: bool = False,
    print_table: bool = False,
    prompt: str = "azr",
    decoding: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Run ``agent`` (already loaded; used as is) on one or more benchmarks.

    Args:
        benchmark: a registered benchmark name (``"cruxeval-o"``), a comma-separated list
            or a sequence of names.
        agent: the policy to evaluate; nothing is reloaded, so the self-play loop can call
            this every ``eval.every`` steps.
        path: benchmark data (JSONL path or ``hf://name``); None = the benchmark's default.
        limit: evaluate the first ``limit`` problems (or a random subset when ``seed`` is
            given); None = all.
        k, samples: pass@k with ``samples >= k`` sampled completions per problem; greedy
            pass@1 is always computed.
        out_dir: when given, write ``results.json`` and ``<benchmark>.records.jsonl`` there
            (atomically; results of other benchmarks already in the file are kept).
        seed: draw a seeded random subset of size ``limit`` instead of the first ones.
        model: label stored in the report (model name, checkpoint path, ``step 40``...).
        env_options: options for the benchmark's environment (e.g. executor workers).
        progress: show progress bars.
        print_table: print the result table to stdout.
        prompt: prompt style handed to every benchmark (``azr`` or ``native``).
        decoding: the agent's decoding settings (``temperature``, ``top_p``,
            ``max_new_tokens``, ``backend``...), recorded with the results so that two
            evaluations can be compared (:mod:`absolutezero.paired`); None reads what
            the agent exposes (:func:`agent_decoding`).

    Returns:
        Flat metrics ``{"<benchmark>/pass@1": ..., "<benchmark>/format_error_rate": ...,
        "<benchmark>/pass@k": ... (k > 1), ...}`` for every benchmark.

    Raises:
        UnknownNameError: an unknown benchmark (with a did-you-mean suggestion).
        ValueError / DatasetError: bad ``k``/``samples``/``limit`` or unreadable data.
    """
    metrics: dict[str, float] = {}
    results: list[Any] = []
    classes: list[type] = []
    settings = {
        "model": model, "path": path, "limit": limit, "seed": seed, "k": k, "samples": samples, "prompt": prompt,
        "decoding": dict(decoding) if decoding is not None else agent_decoding(agent),
    }
    for name in _names(benchmark):
        cls = load_benchmark_class(name)
        instance = cls(path=path, env_options=env_options, prompt=prompt)
        try:
            result = instance.run(agent, limit=limit, seed=seed, k=k, samples=samples, model=model, progress=progress)
        finally:
            instance.close()
        results.append(result)
        classes.append(cls)
        metrics.update(result.metrics())
        if out_dir is not None:
            cls.write_results(out_dir, [result], settings)
    if print_table and results:
        print(classes[0].format_table(results), flush=True)
    return metrics


#: Decoding settings looked up on an agent (or its ``backend``) by :func:`agent_decoding`.
_DECODING_ATTRIBUTES = ("temperature", "top_p", "max_new_tokens")


def agent_decoding(agent: Any) -> dict[str, Any]:
    """The decoding settings ``agent`` exposes (attributes of the agent or of its
    ``backend``): ``temperature``, ``top_p``, ``max_new_tokens``; those it does not
    expose are left out (a comparison then reports them as unchecked)."""
    out: dict[str, Any] = {}
    for owner in (getattr(agent, "backend", None), agent):
        if owner is None:
            continue
        for name in _DECODING_ATTRIBUTES:
            value = getattr(owner, name, None)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[name] = value
    return out


@dataclass
class EvalArgs:
    """Command-line settings of ``python -m absolutezero.evaluate`` (``key=value`` each;
    what each means: :data:`ARG_HELP`)."""

    benchmark: str = ""
    model: str = "embedded"
    agent: str = "policy"
    backend: str = "hf"
    path: str | None = None
    prompt: str = "azr"
    limit: int | None = None
    seed: int | None = None
    k: int = 1
    samples: int = 1
    temperature: float = 0.8
    top_p: float = 1.0
    max_new_tokens: int = 256
    batch_size: int = 64
    out: str | None = None
    progress: bool = True
    agent_options: dict[str, Any] = field(default_factory=dict)
    env_options: dict[str, Any] = field(default_factory=dict)


#: One line per :class:`EvalArgs` key, for ``--help``.
ARG_HELP = {
    "benchmark": "required: a registered benchmark, or several comma-separated (e.g. cruxeval-o,cruxeval-i)",
    "model": "embedded | smollm2-135m | a Hugging Face name or folder | a self-play run or checkpoint folder",
    "agent": "the agent plugin that loads the model",
    "backend": "generation backend: hf or vllm",
    "path": "benchmark data; null = the default location (or $ABSOLUTEZERO_CRUXEVAL)",
    "prompt": "azr (the training's think/answer wrapper) or native (the model's chat template)",
    "limit": "only N problems: the first N, or a seeded random N with seed=",
    "seed": "seed of the random subset (with limit) and of sampling",
    "k": "pass@k (needs samples >= k)",
    "samples": "sampled completions per problem; the greedy pass@1 always runs",
    "temperature": "sampling temperature of the samples",
    "top_p": "nucleus sampling of the samples",
    "max_new_tokens": "new tokens per answer (the native prompts want more: see docs/evaluation.md)",
    "batch_size": "prompts generated together",
    "out": "results folder; null = evals/<timestamp>",
    "progress": "show progress bars",
    "agent_options": "agent_options.<key>=value: the agent's options (as in a run's config)",
    "env_options": "env_options.<key>=value: the environment's options (e.g. the executor's timeout)",
}


def _yaml_text(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value) or '""'


def usage() -> str:
    """The ``--help`` text: synopsis, every argument with its default, and the benchmarks."""
    from absolutezero.registry import benchmark_names

    lines = [__doc__.split("The core never imports")[0].strip(), "", "Arguments (key=value):"]
    for item in fields(EvalArgs):
        default = "{}" if item.default_factory is not MISSING else _yaml_text(item.default)  # type: ignore[misc]
        lines.append(f"  {item.name:<16}default {default:<10} {ARG_HELP[item.name]}")
    lines += ["", "Registered benchmarks: " + (", ".join(benchmark_names()) or "none"),
              "Exit status: 0 done, 1 a model or benchmark failed, 2 a usage or data error."]
    return "\n".join(lines)


_INT_KEYS = ("limit", "seed", "k", "samples", "max_new_tokens", "batch_size")


def parse_args(argv: Sequence[str]) -> EvalArgs:
    """``key=value`` arguments -> :class:`EvalArgs`.

    ``agent_options.<key>=value`` and ``env_options.<key>=value`` fill the free-form maps.

    Raises:
        ConfigError: malformed argument, unknown key (with did-you-mean), a value of the
            wrong type, or a missing ``benchmark``.
    """
    args = EvalArgs()
    known = [f.name for f in fields(EvalArgs)]
    for text in argv:
        if "=" not in text or text.startswith("="):
            raise ConfigError(f"cannot read argument {text!r}: arguments are key=value, e.g. benchmark=cruxeval-o")
        key, raw = text.split("=", 1)
        key = key.strip()
        top, _, sub = key.partition(".")
        if top in ("agent_options", "env_options") and sub:
            getattr(args, top)[sub] = _yaml_value(raw)
            continue
        if key not in known or key in ("agent_options", "env_options"):
            raise ConfigError(f"unknown argument {key!r}{did_you_mean(key, known)} (known: {', '.join(known)})")
        value: Any = _yaml_value(raw)
        if key in _INT_KEYS:
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"{key} must be an integer, got {raw!r}")
        elif key in ("temperature", "top_p"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{key} must be a number, got {raw!r}")
            value = float(value)
        elif key == "progress":
            if not isinstance(value, bool):
                raise ConfigError(f"progress must be true or false, got {raw!r}")
        elif key == "prompt":
            value = str(raw).strip()
            if value not in PROMPT_STYLES:
                hint = did_you_mean(value, list(PROMPT_STYLES))
                raise ConfigError(f"prompt must be one of {', '.join(PROMPT_STYLES)}, got {raw!r}{hint}")
        else:
            value = None if value is None and key in ("path", "out") else str(raw).strip()
        setattr(args, key, value)
    _check(args)
    return args


def _check(args: EvalArgs) -> None:
    if not args.benchmark:
        raise ConfigError("missing benchmark=...; e.g. benchmark=cruxeval-o or benchmark=cruxeval-o,cruxeval-i")
    for key in ("k", "samples", "max_new_tokens", "batch_size"):
        if getattr(args, key) < 1:
            raise ConfigError(f"{key} must be a positive integer, got {getattr(args, key)}")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"limit must be a positive integer (or omitted for all problems), got {args.limit}")
    if args.k > 1 and args.samples < args.k:
        raise ConfigError(f"pass@{args.k} needs samples >= k, got samples={args.samples}; e.g. samples={2 * args.k}")
    if args.temperature <= 0:
        raise ConfigError("temperature must be > 0 (greedy pass@1 is always computed separately)")
    if not 0 < args.top_p <= 1:
        raise ConfigError("top_p must be in (0, 1]")


def _is_run_or_checkpoint(path: Path) -> bool:
    return path.is_dir() and (
        (path / "state.json").is_file() or (path / "latest").is_file() or (path / "checkpoints").is_dir()
    )


def build_agent(args: EvalArgs) -> tuple[Agent, str]:
    """Construct the agent for ``args.model`` (loading checkpoint state when it is a run).

    Returns:
        ``(agent, label)``: the ready agent and the model label for the report.

    Raises:
        ConfigError: bad agent options or an unreadable checkpoint.
        UnknownNameError: unknown agent name.
    """
    from absolutezero.registry import make_agent

    # The evaluation's own decoding settings; every other option keeps the agent's
    # declared default, or the evaluated run's saved value.
    options: dict[str, Any] = {
        "model": args.model,
        "backend": args.backend,
        "seed": 0 if args.seed is None else args.seed,
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "batch_size": args.batch_size,
        "trainable_layers": 0,
    }
    agent_name = args.agent
    label = args.model
    candidate = Path(args.model).expanduser()
    if _is_run_or_checkpoint(candidate):
        from omegaconf import OmegaConf

        from absolutezero.checkpoint import load_checkpoint

        checkpoint = load_checkpoint(candidate)
        saved = checkpoint.config
        agent_name = str(saved.agent)
        # a saved agent folder is itself a loadable model (weights + tokenizer)
        saved_options = OmegaConf.to_container(saved.agent_options, resolve=True)
        assert isinstance(saved_options, dict)
        options = {**saved_options, **options, "model": str(checkpoint.agent_dir)}
        label = f"{checkpoint.path} (step {checkpoint.step})"
    options.update(args.agent_options)
    return make_agent(agent_name, options), label


def _decoding_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Agent options that change what is decoded (they override the ``key=value`` ones)."""
    return {key: options[key] for key in ("temperature", "top_p", "max_new_tokens", "dtype") if key in options}


def _default_out() -> str:
    return str(Path("evals") / time.strftime("%Y%m%d-%H%M%S"))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point. Returns the exit status (0 ok, 2 usage/data error)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(text in ("-h", "--help", "help") for text in argv):
        print(usage())
        return 0
    if any(text.startswith("compare=") for text in argv):
        from absolutezero.paired import main as compare_main

        return compare_main(argv)
    try:
        args = parse_args(argv)
        names = _names(args.benchmark)
        for name in names:  # fail on a typo, missing data or bad options before loading any model
            cls = load_benchmark_class(name)
            check_path = getattr(cls, "check_path", None)
            if check_path is not None:
                check_path(args.path)
            cls(path=args.path, env_options=args.env_options, prompt=args.prompt).close()  # construction is cheap
    except (ConfigError, UnknownNameError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    out = args.out or _default_out()
    if not args.progress:
        from absolutezero.progress import silence_library_bars

        silence_library_bars()
    try:
        agent, label = build_agent(args)
    except (ConfigError, UnknownNameError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, RuntimeError, ValueError) as error:  # model files missing/unreadable
        print(f"error: cannot load model {args.model!r}: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        evaluate(
            names,
            agent,
            path=args.path,
            limit=args.limit,
            k=args.k,
            samples=args.samples,
            out_dir=out,
            seed=args.seed,
            model=label,
            env_options=args.env_options,
            progress=args.progress,
            print_table=True,
            prompt=args.prompt,
            decoding={
                "temperature": args.temperature, "top_p": args.top_p, "max_new_tokens": args.max_new_tokens,
                "backend": args.backend, "greedy_pass@1": True, **_decoding_options(args.agent_options),
            },
        )
    except (ConfigError, UnknownNameError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        agent.close()
    print(f"results: {Path(out) / 'results.json'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
