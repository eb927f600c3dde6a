"""Run configuration: typed defaults, ``key=value`` overrides, validation, did-you-mean.

The schema is a tree of dataclasses handed to OmegaConf, which does the type checking
and merging; this module adds what OmegaConf does not: friendly errors that name the
bad key and suggest the closest valid one, and range checks.

Environment- and agent-specific options go in the free-form ``env_options`` and
``agent_options`` mappings (and plugins' in ``plugin_options.<plugin>``); the environment/agent constructor validates them (they take
explicit keyword arguments, so a typo is an error there too).
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
    propose_batch: int = 4  # proposals per task type per step
    solve_batch: int = 4  # solver prompts per task type per step
    # n >= 2 sampled solver rollouts per valid proposal to estimate p-bar (paper: 8); 4
    # gives p-bar a resolution of 1/4 at half the paper's rollout cost on a CPU.
    learnability_samples: int = 4
    references: int = 3  # K reference tasks shown to the proposer
    task_types: list[str] = field(default_factory=list)  # empty = all of the environment's
    buffer_capacity: int = 4096  # per task type; oldest non-seed entries are evicted
    recency_weight: float = 0.5  # share of solver tasks drawn from the newest quarter
    # At most this share of each step's solve batch is the step's own new valid proposals;
    # the rest comes from the buffers (recency-weighted).
    fresh_share: float = 0.5
    # Seeding (paper: 256 per buffer): distinct valid tasks the untrained model must add to
    # each buffer before training, proposing at most seed_max_rounds rounds of
    # propose_batch per task type. 0 = the environment's identity seeds only.
    seed_size: int = 16
    seed_max_rounds: int = 16


@dataclass
class RewardConfig:
    variant: str = "paper"  # "paper" or "original" (see rewards.py for the difference)
    format_penalty: Optional[float] = None  # None = variant default
    wrong_answer: Optional[float] = None
    unlearnable: Optional[float] = None


@dataclass
class GenerationConfig:
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    # Prompts generated together. Decoding a 0.5B model on a CPU costs about as much per
    # step at batch 64 as at 16, so one step's whole solve phase fits one batch.
    batch_size: int = 64
    # "auto": bfloat16 where the hardware computes it natively (CUDA, CPUs with AVX512-BF16
    # or AMX), else float32 (on AVX2-only CPUs bf16 matmuls are emulated and several times
    # slower than fp32); or "float32" / "bfloat16" / "float16".
    dtype: str = "auto"
    # Longest prompt, in tokens (chat template and prefill included), the agent generates
    # for; a longer one is dropped from the step and counted (generation/prompts_dropped),
    # never truncated. None = no limit. The paper's recipe: 6144.
    max_prompt_tokens: Optional[int] = None


@dataclass
class TrainConfig:
    # The paper's 1e-6 is for 7B models and thousands of steps; a 0.5B model trained for
    # tens of steps on a CPU needs a larger step to move at all (see README, "Learning").
    learning_rate: float = 1e-5
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    clip_ratio: Optional[float] = 0.2  # PPO-style ratio clip; None = plain REINFORCE
    micro_batch: int = 4
    # Train only the top N transformer blocks (+ final norm and output head); 0 = all.
    # 4 of Qwen2.5-Coder-0.5B's 24 makes a CPU update ~2x cheaper (see README, "Speed").
    trainable_layers: int = 4
    # None = auto: on where bf16 is native (see generation.dtype), off elsewhere.
    autocast_bf16: Optional[bool] = None
    # Sampler/trainer numerics gap: "ratio" (PPO ratio against the sampler's logprobs),
    # "tis" (truncated importance sampling), "auto" = tis with vLLM, ratio with hf.
    correction: str = "auto"
    tis_cap: float = 2.0  # the truncation of "tis"'s importance weight
    # How the training state is laid out over the ranks of a torchrun job:
    # "ddp": every rank holds the whole model, gradients and AdamW state (gradients are
    # all-reduced); "fsdp2": torch's fully_shard, one unit per decoder block plus the
    # root, so weights, gradients and AdamW state are split N ways.
    strategy: str = "ddp"
    # Recompute each decoder block's activations in the backward pass instead of keeping
    # them (memory per trained block: one hidden state per token instead of ~all of them).
    gradient_checkpointing: bool = False
    # Micro-batches packed by padded token count rather than by sample count; None =
    # train.micro_batch samples per micro-batch.
    max_tokens_per_micro_batch: Optional[int] = None
    # Completion positions whose full-vocabulary logits exist at once (chunks are
    # recomputed in the backward pass).
    logits_chunk_tokens: int = 1024
    # fsdp2 only: keep the sharded parameters and AdamW state in CPU memory (for GPUs too
    # small for the training state; slower).
    cpu_offload: bool = False


@dataclass
class EvalConfig:
    every: int = 0  # run the benchmark every N steps (0 = never)
    benchmarks: list[str] = field(default_factory=lambda: ["cruxeval-o", "cruxeval-i"])
    path: Optional[str] = None  # CruxEval JSONL; None = the benchmark's default location
    limit: int = 32


@dataclass
class ProbeConfig:
    # A held-out probe set: tasks the untrained model proposes in a separate seeded pass
    # (never trained on, never in a buffer), scored greedily every `every` steps.
    every: int = 5  # 0 = no probe set
    per_type: int = 8  # probe tasks per task type (each costs ~1 proposal round in 2 on a CPU)
    max_rounds: int = 16  # proposal rounds allowed to find them


@dataclass
class RunConfig:
    env: str = "code"
    agent: str = "policy"
    # HF name/path, an embedded model (qwen2.5-coder-0.5b, smollm2-135m), or "embedded" (= Qwen)
    model: str = "embedded"
    backend: str = "hf"  # "hf" or "vllm"
    seed: int = 0
    steps: int = 20
    out: str = "runs"  # parent folder; each run gets a sub-folder
    name: Optional[str] = None  # run folder name; None = <env>-<timestamp>
    resume: Optional[str] = None  # run folder or checkpoint to continue from
    # A seed_buffers.jsonl written by an earlier run: start from it instead of seeding.
    seed_buffers: Optional[str] = None
    checkpoint_every: int = 5
    # Newest checkpoints kept (each holds model + AdamW state, ~1.6 GB for the 135M
    # model); None keeps every one.
    checkpoint_keep: Optional[int] = 3
    progress: bool = True
    selfplay: SelfPlayConfig = field(default_factory=SelfPlayConfig)
    rewards: RewardConfig = field(default_factory=RewardConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    env_options: dict[str, Any] = field(default_factory=dict)
    agent_options: dict[str, Any] = field(default_factory=dict)
    plugins: list[str] = field(default_factory=list)  # extra plugin modules to load by import path
    # Experiment trackers by name (entry-point group absolutezero.trackers), e.g.
    # trackers=[tensorboard,wandb]; each is a plugin on the run/step hooks.
    trackers: list[str] = field(default_factory=list)
    # Per-plugin settings, keyed by plugin or tracker name (plugin_options.oversight.action=drop,
    # plugin_options.wandb.project=azr); each plugin checks its own keys.
    plugin_options: dict[str, Any] = field(default_factory=dict)


_POSITIVE = (
    "steps",
    "selfplay.propose_batch",
    "selfplay.solve_batch",
    "selfplay.buffer_capacity",
    "generation.max_new_tokens",
    "generation.batch_size",
    "train.micro_batch",
    "train.logits_chunk_tokens",
)
# (trainable_layers is checked against the model's depth by the agent)


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
            config = OmegaConf.merge(schema, base)
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
    if config.generation.dtype not in ("auto", "float32", "bfloat16", "float16", "fp32", "bf16", "fp16"):
        raise ConfigError(
            f"generation.dtype must be auto, float32, bfloat16 or float16, got {config.generation.dtype!r}"
            f"{did_you_mean(str(config.generation.dtype), ['auto', 'float32', 'bfloat16', 'float16'])}"
        )
    if config.rewards.variant not in ("paper", "original"):
        raise ConfigError(
            f"rewards.variant must be 'paper' or 'original', got {config.rewards.variant!r}"
            f"{did_you_mean(str(config.rewards.variant), ['paper', 'original'])}"
        )
    if config.backend not in ("hf", "vllm"):
        raise ConfigError(
            f"backend must be 'hf' or 'vllm', got {config.backend!r}"
            f"{did_you_mean(str(config.backend), ['hf', 'vllm'])}"
        )
    if config.generation.temperature <= 0:
        raise ConfigError("generation.temperature must be > 0 (sampling is needed for learnability)")
    if not 0 < config.generation.top_p <= 1:
        raise ConfigError("generation.top_p must be in (0, 1]")
    if config.checkpoint_keep is not None and config.checkpoint_keep < 1:
        raise ConfigError(
            f"checkpoint_keep must be >= 1 (or null to keep every checkpoint), got {config.checkpoint_keep!r}"
        )
    if config.train.correction not in ("auto", "ratio", "tis"):
        raise ConfigError(
            f"train.correction must be 'auto', 'ratio' or 'tis', got {config.train.correction!r}"
        )
    if not config.train.tis_cap >= 1:
        raise ConfigError(f"train.tis_cap must be >= 1 (e.g. 2.0), got {config.train.tis_cap!r}")
    if config.train.strategy not in ("ddp", "fsdp2"):
        raise ConfigError(
            f"train.strategy must be 'ddp' or 'fsdp2', got {config.train.strategy!r}"
            f"{did_you_mean(str(config.train.strategy), ['ddp', 'fsdp2'])}"
        )
    if config.train.cpu_offload and config.train.strategy != "fsdp2":
        raise ConfigError("train.cpu_offload=true needs train.strategy=fsdp2 (it offloads the sharded state)")
    for dotted in ("train.max_tokens_per_micro_batch", "generation.max_prompt_tokens"):
        value = OmegaConf.select(config, dotted)
        if value is not None and value < 1:
            raise ConfigError(f"{dotted} must be a positive integer or null (no limit), got {value!r}")
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
