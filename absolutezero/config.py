"""Run configuration: typed defaults, ``key=value`` overrides, validation, did-you-mean.

The schema is a tree of dataclasses handed to OmegaConf, which does the type checking
and merging; this module adds what OmegaConf does not: friendly errors that name the
bad key and suggest the closest valid one, and range checks.

The core knows no component's options: the environment's go in ``env_options``, the
agent's in ``agent_options`` and each plugin's or tracker's in ``plugin_options.<name>``.
Each component declares them itself (:mod:`absolutezero.options`), and they are checked
against that declaration when the run is built. Keys that used to be the core's and
moved to a component (``train.*``, ``generation.*``, ``model``, ``backend``) are errors
that name their new place (:data:`MOVED_KEYS`); a run saved before the move is read
with them moved (:func:`migrate_saved`).
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


class ConfigError(ValueError):
    """A user-facing configuration mistake; the message says what to change."""


@dataclass
class SelfPlayConfig:
    """The self-play step (``selfplay.<key>``).

    Args:
        propose_batch: proposals per task type per step.
        solve_batch: solver prompts per task type per step.
        learnability_samples: n >= 2 sampled solver rollouts per valid proposal to estimate p-bar (paper: 8).
        references: K reference tasks from the buffers shown to the proposer.
        task_types: the task types to train; empty = all of the environment's.
        buffer_capacity: tasks kept per task type; the oldest non-seed entries are evicted.
        recency_weight: share of solver tasks drawn from the newest quarter of a buffer.
        fresh_share: at most this share of a step's solve batch is the step's own new valid proposals.
        seed_size: distinct valid tasks the untrained model adds to each buffer before training (paper: 256; 0 = the environment's seeds only).
        seed_max_rounds: proposal rounds allowed for seeding (each proposes seed_batch per lacking task type).
        seed_batch: proposals per lacking task type in each round of seeding and of proposing the probe set; fewer, bigger rounds pay for fewer long tails (keep a round within the agent's batch_size).
    """

    propose_batch: int = 4
    solve_batch: int = 4
    # 4 gives p-bar a resolution of 1/4 at half the paper's rollout cost on a CPU.
    learnability_samples: int = 4
    references: int = 3
    task_types: list[str] = field(default_factory=list)
    buffer_capacity: int = 4096
    recency_weight: float = 0.5
    fresh_share: float = 0.5
    seed_size: int = 16
    seed_max_rounds: int = 16
    # 48 per type = 144 code-env prompts per round, one generation batch (the agent's
    # batch_size is 144): a round's decoding runs until its longest proposal ends, and on a
    # CPU a call with 1-8 rows left costs ~100-150 ms, almost what a full one does (reading
    # the weights). Two rounds of 144 reach the first step 1.47x sooner than six of 48
    # (8 seeds), valid rates within noise (docs/results.md, "Time to the first step").
    seed_batch: int = 48


@dataclass
class RewardConfig:
    """Rewards (``rewards.<key>``; see :mod:`absolutezero.rewards`).

    Args:
        variant: "paper" (the paper's section 3.3) or "original" (the official code's).
        format_penalty: reward of a response that breaks the format; null = the variant's.
        wrong_answer: reward of a well-formed wrong answer; null = the variant's.
        unlearnable: proposer reward of a task solved always or never; null = the variant's.
    """

    variant: str = "paper"
    format_penalty: Optional[float] = None
    wrong_answer: Optional[float] = None
    unlearnable: Optional[float] = None


@dataclass
class EvalConfig:
    """Benchmarks during training (``eval.<key>``).

    Args:
        every: evaluate every N steps; 0 = never.
        benchmarks: registered benchmark names; empty = the ones the environment names.
        path: the benchmarks' data; null = each benchmark's default location.
        limit: problems per benchmark (the first N).
    """

    every: int = 0
    benchmarks: list[str] = field(default_factory=list)
    path: Optional[str] = None
    limit: int = 32


@dataclass
class ProbeConfig:
    """The held-out probe set (``probe.<key>``): tasks the untrained model proposes in a
    separate seeded pass, never trained on and never in a buffer, scored greedily.

    Args:
        every: score the probe set every N steps; 0 = no probe set.
        per_type: probe tasks per task type (32 give a 95% interval of about +-16 points at 50% accuracy; 8 gave +-28).
        max_rounds: proposal rounds (of selfplay.seed_batch per lacking task type) allowed to find them.
    """

    every: int = 5
    per_type: int = 32
    max_rounds: int = 16


@dataclass
class RunConfig:
    """One run: its components by name, the core's sections, and its bookkeeping.

    Args:
        env: the environment to self-play in (entry-point group absolutezero.environments), e.g. env=code; required.
        agent: the agent (entry-point group absolutezero.agents).
        seed: the run's one seed; components whose constructor takes ``seed`` receive it.
        steps: training steps.
        out: parent folder of run folders.
        name: run folder name; null = <env>-<timestamp>.
        resume: a run folder or checkpoint to continue from.
        seed_buffers: a seed_buffers.jsonl from an earlier run: start from it instead of seeding.
        reuse_start: reuse the seed buffers and probe set proposed by an earlier run in the same out folder with the same seed and the same settings that shape them (kept in <out>/.cache/start); false = propose anew.
        checkpoint_every: checkpoint every N steps (and at the end); 0 = only at the end.
        checkpoint_keep: newest checkpoints kept; null keeps every one.
        progress: show progress bars.
        selfplay: the self-play step.
        rewards: reward settings.
        eval: benchmarks during training.
        probe: the held-out probe set.
        env_options: the environment's own options (see its section below).
        agent_options: the agent's own options (see its section below).
        plugins: extra plugin modules to load, by import path.
        trackers: experiment trackers by name (entry-point group absolutezero.trackers).
        plugin_options: per-plugin or per-tracker options, keyed by its name.
    """

    env: str = ""  # no default: the core favours no environment
    agent: str = "policy"
    seed: int = 0
    steps: int = 80  # ~90 minutes on a 2-core CPU with the embedded model (start, steps, probe scoring)
    out: str = "runs"
    name: Optional[str] = None
    resume: Optional[str] = None
    seed_buffers: Optional[str] = None
    reuse_start: bool = True
    checkpoint_every: int = 10  # a CPU checkpoint of the embedded model takes ~30 s and ~6 GB
    checkpoint_keep: Optional[int] = 3
    progress: bool = True
    selfplay: SelfPlayConfig = field(default_factory=SelfPlayConfig)
    rewards: RewardConfig = field(default_factory=RewardConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    env_options: dict[str, Any] = field(default_factory=dict)
    agent_options: dict[str, Any] = field(default_factory=dict)
    plugins: list[str] = field(default_factory=list)
    trackers: list[str] = field(default_factory=list)
    plugin_options: dict[str, Any] = field(default_factory=dict)


#: Keys that were the core's and now belong to the agent (``agent_options.<option>``).
MOVED_KEYS: dict[str, str] = {
    "model": "agent_options.model",
    "backend": "agent_options.backend",
    **{
        f"generation.{name}": f"agent_options.{name}"
        for name in ("max_new_tokens", "temperature", "top_p", "batch_size", "dtype", "max_prompt_tokens")
    },
    **{
        f"train.{name}": f"agent_options.{name}"
        for name in (
            "learning_rate", "weight_decay", "grad_clip", "clip_ratio", "micro_batch", "trainable_layers",
            "autocast_bf16", "correction", "tis_cap", "strategy", "gradient_checkpointing",
            "max_tokens_per_micro_batch", "logits_chunk_tokens", "cpu_offload",
        )
    },
}
_MOVED_SECTIONS = ("train", "generation")


def moved_key_error(key: str, source: str = "") -> Optional[ConfigError]:
    """The error for a key that moved to the agent's options, or None if ``key`` did not move."""
    new = MOVED_KEYS.get(key)
    if new is None and key.split(".", 1)[0] in _MOVED_SECTIONS:
        new = f"agent_options.{key.split('.', 1)[1]}" if "." in key else "agent_options.<option>"
    if new is None:
        return None
    return ConfigError(
        f"{key!r}{source} moved: it is an option of the agent now, set {new}=... instead "
        "(python -m absolutezero.run --help lists the chosen agent's options)"
    )


def migrate_saved(saved: DictConfig) -> DictConfig:
    """A run config saved before the agent's options moved, with them moved.

    Runs saved by earlier versions hold ``model``, ``backend``, ``generation.*`` and
    ``train.*`` at the top; they become ``agent_options.*`` (an explicit
    ``agent_options`` entry wins), so an old run still resumes and evaluates.
    """
    data = OmegaConf.to_container(saved, resolve=True)
    if not isinstance(data, dict) or not any(key in data for key in ("model", "backend", *_MOVED_SECTIONS)):
        return saved
    agent_options: dict[str, Any] = {}
    for key in ("model", "backend"):
        if key in data:
            agent_options[key] = data.pop(key)
    for section in _MOVED_SECTIONS:
        values = data.pop(section, None) or {}
        agent_options.update(values)
    agent_options.update(data.get("agent_options") or {})
    data["agent_options"] = agent_options
    return OmegaConf.create(data)


_POSITIVE = (
    "steps",
    "selfplay.propose_batch",
    "selfplay.solve_batch",
    "selfplay.buffer_capacity",
    "selfplay.seed_batch",
)


def _all_keys(node: Any, prefix: str = "") -> list[str]:
    keys: list[str] = []
    if isinstance(node, DictConfig):
        for key in node.keys():
            dotted = f"{prefix}{key}"
            keys.append(dotted)
            child = node._get_node(key)
            if isinstance(child, DictConfig) and not OmegaConf.is_missing(node, key):
                keys.extend(_all_keys(child, dotted + "."))
    return keys


def did_you_mean(word: str, candidates: Sequence[str]) -> str:
    """`` did you mean 'x'?`` for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _parse_override(text: str) -> tuple[str, str]:
    if "=" not in text or text.startswith("="):
        raise ConfigError(
            f"cannot read argument {text!r}: overrides are key=value, e.g. steps=10 or "
            "selfplay.propose_batch=8"
        )
    key, value = text.split("=", 1)
    return key.strip(), value


def load_config(overrides: Sequence[str] = (), base: Optional[DictConfig] = None) -> DictConfig:
    """Defaults (or ``base``, e.g. a resumed run's saved config) with ``key=value`` overrides.

    Raises ConfigError naming the bad key or value and how to fix it.
    """
    schema = OmegaConf.structured(RunConfig)
    if base is None:
        config = schema
    else:
        try:
            config = OmegaConf.merge(schema, migrate_saved(base))
        except OmegaConfBaseException as error:
            key = getattr(error, "full_key", None) or ""
            message = _first_line(error)
            hint = did_you_mean(key, _all_keys(schema)) if key and "did you mean" not in message.lower() else ""
            raise ConfigError(f"bad saved config: {message}{hint}") from None
    known = _all_keys(config)
    files, pairs = [], []
    for text in overrides:
        key, value = _parse_override(text)
        (files if key == CONFIG_FILE_KEY else pairs).append((key, value))
    # config=<file.yaml> first, wherever it appears (several: in the order given), so the
    # command line's other key=value overrides always win over the file.
    for _, path in files:
        for key, value in _read_config_file(path):
            _apply(config, key, value, known, source=f" in config file {path}")
    for key, value in pairs:
        _apply(config, key, _yaml_value(value), known, shown=value, candidates=[*known, CONFIG_FILE_KEY])
    validate(config)
    return config


#: ``config=<file.yaml>`` on the command line: that file's values over the defaults.
CONFIG_FILE_KEY = "config"
_FREE_FORM = ("env_options", "agent_options", "plugin_options")


def _apply(
    config: DictConfig, key: str, value: Any, known: Sequence[str], *, source: str = "",
    shown: Any = None, candidates: Optional[Sequence[str]] = None,
) -> None:
    """Set one dotted ``key`` (checked against the schema; ``source`` names a config file)."""
    top = key.split(".", 1)[0]
    free_form = top in _FREE_FORM and "." in key
    moved = moved_key_error(key, source)
    if moved is not None:
        raise moved
    if key not in known and not free_form:
        raise ConfigError(f"unknown config key {key!r}{source}{did_you_mean(key, candidates or known)}")
    try:
        OmegaConf.update(config, key, OmegaConf.create({"v": value})["v"], merge=True)
    except OmegaConfBaseException as error:
        expected = _schema_type(key)
        hint = f": expected {_type_name(expected)}" if expected is not None else ""
        text = value if shown is None else shown
        raise ConfigError(f"bad value {text!r} for {key!r}{source}{hint} ({_first_line(error)})") from None


def _read_config_file(path: str) -> list[tuple[str, Any]]:
    """The ``(dotted key, value)`` pairs of a YAML run-config file, nested sections flattened.

    Raises ConfigError for a missing or unreadable file, invalid YAML, a top level that is
    not a mapping, or a ``config`` key inside the file.
    """
    import yaml

    if not path.strip():
        raise ConfigError("config= needs the path of a YAML file, e.g. config=configs/qwen2.5-coder-7b.yaml")
    file = Path(path).expanduser()
    if not file.is_file():
        what = "is a folder, not a file" if file.is_dir() else "does not exist"
        raise ConfigError(f"config file {str(file)!r} {what} (from config={path})")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {str(file)!r}: {error}") from None
    except yaml.YAMLError as error:
        detail = " ".join(str(error).split())
        raise ConfigError(f"config file {str(file)!r} is not valid YAML: {detail}") from None
    if data is None:
        return []
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {str(file)!r} must hold a mapping of config keys (e.g. 'steps: 10'), "
            f"got {type(data).__name__}"
        )
    pairs: list[tuple[str, Any]] = []

    def flatten(node: dict, prefix: str) -> None:
        for name, value in node.items():
            key = f"{prefix}{name}"
            if key == CONFIG_FILE_KEY:
                raise ConfigError(f"config file {str(file)!r} sets 'config'; a config file cannot include another")
            if isinstance(value, dict) and value:
                flatten(value, key + ".")
            else:
                pairs.append((key, value))

    flatten(data, "")
    return pairs


def _first_line(error: Exception) -> str:
    """OmegaConf's message without its ``full_key``/``object_type`` detail lines."""
    text = str(getattr(error, "msg", None) or error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def _schema_type(key: str) -> Any:
    """The declared type of a dotted schema key, or None for free-form/unknown keys."""
    cls: Any = RunConfig
    parts = key.split(".")
    for index, part in enumerate(parts):
        if not dataclasses.is_dataclass(cls):
            return None
        hints = typing.get_type_hints(cls)
        if part not in hints:
            return None
        cls = hints[part]
        if index == len(parts) - 1:
            return cls
    return None


def _type_name(hint: Any) -> str:
    """Readable name of a schema type: ``int``, ``float or null``, ``a list of str``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        names = [_type_name(arg) for arg in args if arg is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin is list:
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if origin is dict:
        return "a mapping (set entries as key.name=value)"
    if dataclasses.is_dataclass(hint):
        return "a section (set its keys, e.g. section.key=value)"
    return getattr(hint, "__name__", str(hint))


def _yaml_value(text: str) -> Any:
    """Parse an override value the way YAML would (numbers, booleans, null, lists)."""
    import yaml

    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def validate(config: DictConfig) -> None:
    """Range and choice checks that types alone cannot express."""
    for dotted in _POSITIVE:
        value = OmegaConf.select(config, dotted)
        if value is None or value < 1:
            raise ConfigError(f"{dotted} must be a positive integer, got {value!r}")
    if config.selfplay.learnability_samples < 2:
        raise ConfigError(
            "selfplay.learnability_samples must be >= 2: with one rollout the success rate is "
            "always 0 or 1 and the proposer reward is always 0"
        )
    if config.selfplay.references < 0:
        raise ConfigError("selfplay.references must be >= 0")
    if not 0.0 <= config.selfplay.recency_weight <= 1.0:
        raise ConfigError("selfplay.recency_weight must be in [0, 1]")
    if not 0.0 <= config.selfplay.fresh_share <= 1.0:
        raise ConfigError("selfplay.fresh_share must be in [0, 1]")
    for dotted in ("selfplay.seed_size", "selfplay.seed_max_rounds", "probe.every", "probe.per_type", "probe.max_rounds"):
        if OmegaConf.select(config, dotted) < 0:
            raise ConfigError(f"{dotted} must be >= 0, got {OmegaConf.select(config, dotted)!r}")
    if config.rewards.variant not in ("paper", "original"):
        raise ConfigError(
            f"rewards.variant must be 'paper' or 'original', got {config.rewards.variant!r}"
            f"{did_you_mean(str(config.rewards.variant), ['paper', 'original'])}"
        )
    if config.checkpoint_keep is not None and config.checkpoint_keep < 1:
        raise ConfigError(
            f"checkpoint_keep must be >= 1 (or null to keep every checkpoint), got {config.checkpoint_keep!r}"
        )
    if config.checkpoint_every < 0 or config.eval.every < 0:
        raise ConfigError("checkpoint_every and eval.every must be >= 0 (0 = off)")


def to_yaml(config: DictConfig) -> str:
    return OmegaConf.to_yaml(config, resolve=True)


def save_config(config: DictConfig, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    from absolutezero.atomic import atomic_write_text

    atomic_write_text(Path(path), to_yaml(config))


def load_saved_config(path: str | Path) -> DictConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no saved config at {path}")
    return load_config(base=OmegaConf.load(path))
