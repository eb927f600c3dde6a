"""Precision choice ("auto") and partial training (train.trainable_layers)."""

from __future__ import annotations

import pytest
import torch

from absolutezero.protocol import Prompt, Sample
from absolutezero_policy import precision
from absolutezero_policy.trainable import decoder_layers, select_trainable


def test_auto_precision_is_bf16_only_where_native(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.generation_dtype_name("auto", "cpu") == "float32"
    assert precision.autocast_default(None, "cpu") is False
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.generation_dtype_name("auto", "cpu") == "bfloat16"
    assert precision.autocast_default(None, "cpu") is True
    # explicit choices are kept as given
    assert precision.generation_dtype_name("bfloat16", "cpu") == "bfloat16"
    assert precision.autocast_default(False, "cpu") is False


def test_cpu_flags_are_read_from_cpuinfo(monkeypatch, tmp_path):
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor : 0\nflags : fpu sse2 avx2 avx512f\n")
    real_path = precision.Path

    monkeypatch.setattr(precision, "Path", lambda p: fake if p == "/proc/cpuinfo" else real_path(p))
    precision.cpu_has_native_bf16.cache_clear()
    try:
        assert precision.cpu_has_native_bf16() is False
        fake.write_text("flags : fpu avx512f avx512_bf16\n")
        precision.cpu_has_native_bf16.cache_clear()
        assert precision.cpu_has_native_bf16() is True
    finally:
        precision.cpu_has_native_bf16.cache_clear()


def test_float32_generation_uses_the_trained_model_itself(make_tiny_agent):
    agent = make_tiny_agent(dtype="auto", autocast_bf16=None)
    if precision.native_bf16("cpu"):
        pytest.skip("this CPU computes bf16 natively, so auto picks a bf16 copy")
    assert agent.backend.model is agent.model and agent.learner.autocast_bf16 is False


def test_top_layers_only_are_trained_and_the_rest_stays_put(make_tiny_agent):
    agent = make_tiny_agent(trainable_layers=1)
    model = agent.model
    layers = decoder_layers(model)
    assert len(layers) == 2
    assert all(p.requires_grad for p in layers[1].parameters())
    assert not any(p.requires_grad for p in layers[0].parameters())
    assert not any(p.requires_grad for p in model.get_input_embeddings().parameters()) or \
        model.get_output_embeddings().weight is model.get_input_embeddings().weight  # tied head trains
    assert agent.trainable_parameters < agent.total_parameters
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    prompt_ids = agent.encode_prompt(Prompt(({"role": "user", "content": "hi"},)))
    sample = agent.generate([Prompt(({"role": "user", "content": "hi"},))])[0][0]
    other = Sample(prompt_ids, [5, 6, 7], [-1.0, -1.0, -1.0], "")
    metrics = agent.update([sample, other], [1.0, -1.0])
    assert metrics["trained_samples"] == 2
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(not name.startswith("model.layers.0.") for name in changed)
    assert any(name.startswith("model.layers.1.") for name in changed)


def test_trainable_layers_bounds():
    model = torch.nn.Module()
    model.blocks = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)])
    model.head = torch.nn.Linear(2, 2)
    assert select_trainable(model, 0) == (6 * 3 + 6, 6 * 3 + 6)
    assert select_trainable(model, 1) == (6 + 6, 24)  # top block + what is outside the stack
    assert select_trainable(model, 10) == (24, 24)  # at or above the depth: every block
    with pytest.raises(ValueError, match="trainable_layers"):
        select_trainable(model, -1)
