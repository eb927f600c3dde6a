"""Model shapes for the memory planner: :class:`Architecture`, the built-in table of
Qwen2.5-Coder shapes and :func:`resolve_architecture` (a model name or folder -> shapes,
without loading weights).

Split out of :mod:`absolutezero_policy.memory_plan` (which re-exports these names) so
that the shapes, the byte formulas and the search over settings each have a module.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from absolutezero.config import ConfigError, did_you_mean

__all__ = ["Architecture", "BUILTIN_ARCHITECTURES", "resolve_architecture"]


@dataclass(frozen=True)
class Architecture:
    """The shapes of a Qwen2/Llama-style decoder (what the formulas need)."""

    name: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    tie_word_embeddings: bool
    head_dim: int = 0  # 0: hidden_size // num_heads
    attention_bias: bool = True  # q/k/v biases (Qwen2: yes, Llama: no)
    source: str = ""  # where the numbers came from

    def __post_init__(self) -> None:
        if not self.head_dim:
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_heads)

    @property
    def q_size(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def block_parameters(self) -> int:
        h, q, kv, i = self.hidden_size, self.q_size, self.kv_size, self.intermediate_size
        bias = (q + 2 * kv) if self.attention_bias else 0
        return h * q + 2 * h * kv + q * h + bias + 3 * h * i + 2 * h

    @property
    def root_parameters(self) -> int:
        """Embeddings, final norm and head (fsdp2's root unit)."""
        matrices = 1 if self.tie_word_embeddings else 2
        return matrices * self.vocab_size * self.hidden_size + self.hidden_size

    @property
    def total_parameters(self) -> int:
        return self.num_layers * self.block_parameters + self.root_parameters

    def trainable_parameters(self, trainable_layers: int) -> int:
        """Parameters ``select_trainable`` trains: all (0), or the top blocks plus the
        final norm and the head (the input embeddings stay frozen unless tied to it)."""
        if trainable_layers == 0:
            return self.total_parameters
        blocks = min(trainable_layers, self.num_layers)
        return blocks * self.block_parameters + self.hidden_size + self.vocab_size * self.hidden_size

    def kv_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        """KV-cache bytes per token: K and V of every layer."""
        return 2 * self.num_layers * self.kv_size * dtype_bytes

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, name: str, source: str) -> Architecture:
        """From a Hugging Face ``config.json`` mapping.

        Raises:
            ConfigError: not a Qwen2/Llama-style decoder, or a shape is missing.
        """
        model_type = str(config.get("model_type", "?"))
        if model_type not in _SUPPORTED_TYPES:
            raise ConfigError(
                f"model {name!r} is a {model_type!r} model ({source}); the memory planner models "
                f"Qwen2/Llama-style decoders only ({', '.join(sorted(_SUPPORTED_TYPES))})"
            )
        keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
        missing = [key for key in keys if not isinstance(config.get(key), int)]
        if missing:
            raise ConfigError(f"the config.json of model {name!r} ({source}) lacks {', '.join(missing)}")
        heads = config["num_attention_heads"]
        return cls(
            name=name,
            vocab_size=config["vocab_size"],
            hidden_size=config["hidden_size"],
            num_layers=config["num_hidden_layers"],
            num_heads=heads,
            num_kv_heads=config.get("num_key_value_heads") or heads,
            intermediate_size=config["intermediate_size"],
            tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
            head_dim=config.get("head_dim") or 0,
            attention_bias=bool(config.get("attention_bias", model_type == "qwen2")),
            source=source,
        )


_SUPPORTED_TYPES = frozenset({"qwen2", "llama", "mistral"})

_QWEN_SOURCE = "built-in table (the model's config.json on the Hugging Face Hub)"


def _qwen(name: str, vocab: int, hidden: int, layers: int, heads: int, kv: int, mlp: int, tied: bool) -> Architecture:
    return Architecture(name, vocab, hidden, layers, heads, kv, mlp, tied, attention_bias=True, source=_QWEN_SOURCE)


#: Shapes of models without a local copy, from their config.json on the Hugging Face Hub
#: (Qwen/Qwen2.5-Coder-{0.5B,1.5B,3B,7B,14B}[-Instruct]; the base and instruct models
#: share them; checked against copies of those files and the model cards' parameter
#: counts: 0.49 B, 1.54 B, 3.09 B, 7.61 B, 14.7 B). The 0.5B-3B models tie the head to the
#: embeddings. "embedded" is this project's GGUF-derived copy of the 0.5B instruct model,
#: whose head is *not* tied (its safetensors hold lm_head.weight: 630 M parameters);
#: the copy's own config.json wins when the cache folder exists.
BUILTIN_ARCHITECTURES: Mapping[str, Architecture] = {
    arch.name: arch
    for arch in (
        _qwen("Qwen/Qwen2.5-Coder-0.5B", 151936, 896, 24, 14, 2, 4864, True),
        _qwen("Qwen/Qwen2.5-Coder-1.5B", 151936, 1536, 28, 12, 2, 8960, True),
        _qwen("Qwen/Qwen2.5-Coder-3B", 151936, 2048, 36, 16, 2, 11008, True),
        _qwen("Qwen/Qwen2.5-Coder-7B", 152064, 3584, 28, 28, 4, 18944, False),
        _qwen("Qwen/Qwen2.5-Coder-14B", 152064, 5120, 48, 40, 8, 13824, False),
    )
}
_EMBEDDED_FALLBACK = dataclasses.replace(
    BUILTIN_ARCHITECTURES["Qwen/Qwen2.5-Coder-0.5B"],
    name="embedded",
    tie_word_embeddings=False,
    source="built-in table (Qwen2.5-Coder-0.5B shapes, untied head as in the embedded GGUF copy)",
)


def _builtin(model: str) -> Architecture | None:
    key = model.removesuffix("-Instruct").lower()
    for name, arch in BUILTIN_ARCHITECTURES.items():
        if name.lower() == key:
            return dataclasses.replace(arch, name=model)
    return None


def _read_config(folder: Path, name: str) -> Architecture:
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from error
    if not isinstance(config, dict):
        raise ConfigError(f"{path} does not hold a JSON object")
    return Architecture.from_config(config, name=name, source=str(path))


def _hub_cache_config(model: str) -> Path | None:
    """A config.json of ``org/name`` in the local Hugging Face cache, if any."""
    root = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface"), "hub"
    )
    snapshots = Path(root) / ("models--" + model.replace("/", "--")) / "snapshots"
    if not snapshots.is_dir():
        return None
    found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    return found[0].parent if found else None


def resolve_architecture(model: str, cache_dir: str | Path | None = None) -> Architecture:
    """The shapes of ``model`` (what ``model=`` accepts), without loading any weights.

    Order: an existing folder's ``config.json``; an embedded model's cache folder
    (falling back to the built-in table for ``embedded``); the built-in table of
    Qwen2.5-Coder names; the local Hugging Face cache.

    Raises:
        ConfigError: none of these knows the model.
    """
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"model must be a name or a folder, got {model!r}")
    from absolutezero_policy.embedded import CATALOGUE, EMBEDDED

    if model == EMBEDDED or model in CATALOGUE:
        from absolutezero_policy.model_loading import default_cache_dir
        from absolutezero_policy.embedded import get_embedded

        root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        folder = root / get_embedded(model).cache_name
        if (folder / "config.json").is_file():
            return _read_config(folder, model)
        if get_embedded(model).name == get_embedded(EMBEDDED).name:
            return dataclasses.replace(_EMBEDDED_FALLBACK, name=model)
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"model folder {path} has no config.json (the planner reads the model's shapes there)")
        return _read_config(path, model)
    builtin = _builtin(model)
    if builtin is not None:
        return builtin
    cached = _hub_cache_config(model) if "/" in model else None
    if cached is not None:
        return _read_config(cached, model)
    known = list(BUILTIN_ARCHITECTURES)
    raise ConfigError(
        f"unknown model architecture {model!r}{did_you_mean(model, known)}: pass a local model folder "
        f"with config.json (model=/path/to/folder), or one of the built-in names: {', '.join(known)}"
    )

