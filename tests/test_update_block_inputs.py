"""The update from block inputs kept by generation (absolutezero_policy.block_inputs)
against the full pass it replaces: same log-probabilities and same gradients of every
trained parameter, to fp32 rounding, on a real agent's sampled rollouts.

The model is a tiny random Llama with an untied head and 3 blocks, trained in its top
block (``trainable_layers=1``); generation is float32 (the trained model itself), so the
two paths must agree to rounding. The rollouts go through everything generation does:
chat-template prompts sharing a long prefix, repeated prompts (num_samples), prefill in
length groups, rows dropped from the cache as they finish, and chunks of the batch.
Every test also checks that the kept path really ran (``reused_samples``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from absolutezero.protocol import Prompt, Sample  # noqa: E402
from absolutezero_policy import token_logprobs  # noqa: E402
from absolutezero_policy.block_inputs import BlockInputs, first_trained_block, top_blocks_reason  # noqa: E402
from tests.conftest import save_tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def untied_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(
        tmp_path_factory.mktemp("tiny-llama-untied"), transformers.LlamaConfig, transformers.LlamaForCausalLM, 77,
        num_hidden_layers=3, tie_word_embeddings=False,
    )


PROMPTS = [
    "Write a Python function that adds two numbers.",
    "f(x) = x + 1. What is f(3)?",
    "Reverse the list [1, 2, 3, 4, 5, 6, 7] and explain each step of what you do, briefly.",
    "Hi",
    "Explain recursion.",
]


def rollouts(agent, num_samples: int = 3) -> list[Sample]:
    groups = agent.generate([Prompt(messages=[{"role": "user", "content": text}]) for text in PROMPTS], num_samples)
    return [sample for group in groups for sample in group]


def advantages(samples: list[Sample]) -> list[float]:
    return [(-1.0) ** i * (0.5 + (i % 3)) for i in range(len(samples))]


def gradients(agent, samples, values, kept) -> tuple[dict, dict]:
    stats = agent.learner.accumulate_gradients(samples, values, kept)
    grads = {n: p.grad.clone() for n, p in agent.model.named_parameters() if p.requires_grad and p.grad is not None}
    assert grads
    return grads, stats


@pytest.mark.parametrize(
    ("share", "checkpointing"), [(True, False), (False, False), (False, True)],
    ids=["shared-prompt-stages", "full-sequences", "gradient-checkpointing"],
)
def test_the_update_from_kept_block_inputs_has_the_full_pass_gradients(
    make_tiny_agent, untied_model_dir, share, checkpointing, monkeypatch,
):
    agent = make_tiny_agent(
        model=str(untied_model_dir), trainable_layers=1, max_new_tokens=12, batch_size=6, seed=3,
        stop_strings=("e",),  # random tokens often hold an "e": rows finish at different steps
        share_prompts_in_update=share, gradient_checkpointing=checkpointing,
    )
    calls = []  # whether each top-block call extended a cache (a later stage)
    original = token_logprobs.run_top_blocks
    monkeypatch.setattr(token_logprobs, "run_top_blocks", lambda *a: calls.append(a[5] is not None) or original(*a))
    assert agent.learner.first_block == 2
    kept = agent.backend.block_inputs
    samples = rollouts(agent)
    assert len({len(s.completion_ids) for s in samples}) > 2  # rows finished at different steps
    assert len(kept) == len({(tuple(s.prompt_ids), tuple(s.completion_ids)) for s in samples})
    values = advantages(samples)
    full, full_stats = gradients(agent, samples, values, None)
    reused, reused_stats = gradients(agent, samples, values, kept)
    assert full_stats["reused_samples"] == 0
    assert reused_stats["reused_samples"] == reused_stats["trained_samples"] == len(samples)
    assert full.keys() == reused.keys()
    for name in full:
        assert torch.allclose(full[name], reused[name], atol=1e-5, rtol=1e-4), name
    assert reused_stats["loss"] == pytest.approx(full_stats["loss"], rel=1e-5, abs=1e-7)
    assert any(calls) if share else calls and not any(calls)  # the kept path ran, in stages when sharing
    # the log-probabilities the update computes are the ones generation sampled with
    with torch.no_grad():
        computed = agent.learner.completion_logprobs(samples, kept)
    for sample, logprobs in zip(samples, computed):
        assert torch.allclose(logprobs, torch.tensor(sample.logprobs), atol=1e-4)


def test_a_sample_generation_did_not_keep_takes_the_full_pass(make_tiny_agent, untied_model_dir):
    agent = make_tiny_agent(model=str(untied_model_dir), trainable_layers=1, seed=5)
    samples = rollouts(agent, num_samples=2)
    stranger = Sample(prompt_ids=samples[0].prompt_ids, completion_ids=[5, 6, 7], logprobs=[-1.0] * 3, text="")
    batch, values = samples + [stranger], advantages(samples + [stranger])
    full, _ = gradients(agent, batch, values, None)
    mixed, stats = gradients(agent, batch, values, agent.backend.block_inputs)
    assert 0 < stats["reused_samples"] < len(batch)
    for name in full:
        assert torch.allclose(full[name], mixed[name], atol=1e-5, rtol=1e-4), name


def test_greedy_generation_keeps_nothing_and_an_update_empties_the_store(make_tiny_agent, untied_model_dir):
    agent = make_tiny_agent(model=str(untied_model_dir), trainable_layers=1, seed=7)
    kept = agent.backend.block_inputs
    agent.generate([Prompt(messages=[{"role": "user", "content": "Hi"}])], 2, greedy=True)
    assert len(kept) == 0
    samples = rollouts(agent, num_samples=2)
    assert len(kept) > 0
    metrics = agent.update(samples, advantages(samples))
    assert metrics["reused_samples"] == len(samples)
    assert len(kept) == 0 and kept.bytes == 0


def test_reuse_is_off_where_it_would_change_the_gradient_or_has_nothing_to_skip(make_tiny_agent, untied_model_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="absolutezero_policy.learner"):
        tied = make_tiny_agent(trainable_layers=1)  # the tiny Llama's head is tied to its input embeddings
    assert tied.learner.first_block is None and tied.backend.block_inputs is None
    assert "input embeddings are trained" in caplog.text
    assert make_tiny_agent(model=str(untied_model_dir), trainable_layers=0).backend.block_inputs is None
    assert make_tiny_agent(model=str(untied_model_dir), trainable_layers=3).backend.block_inputs is None
    assert make_tiny_agent(model=str(untied_model_dir), trainable_layers=1, reuse_frozen_states=False).learner.first_block is None


def test_first_trained_block_and_the_self_check(untied_model_dir):
    model = transformers.AutoModelForCausalLM.from_pretrained(untied_model_dir).float()
    assert [first_trained_block(model, k) for k in (0, 1, 2, 3, 9)] == [None, 2, 1, None, None]
    for parameter in model.model.embed_tokens.parameters():
        parameter.requires_grad_(False)
    assert top_blocks_reason(model, 1) is None
    # a model whose decoder loop does something the mirror does not: the check catches it
    model.model.norm.weight.data.mul_(2.0)
    original = model.model.forward
    model.model.forward = lambda *a, **k: (lambda out: (setattr(out, "last_hidden_state", out.last_hidden_state + 1.0) or out))(original(*a, **k))
    assert "does not reproduce" in top_blocks_reason(model, 1)


def test_the_store_checks_lengths_and_keeps_within_its_budget():
    model = torch.nn.Module()
    model.layers = torch.nn.ModuleList([torch.nn.Identity(), torch.nn.Identity()])
    store = BlockInputs(model, 1, max_bytes=3 * 4 * 4 * 4)  # three samples of 4 positions x 4 floats
    with pytest.raises(ValueError, match="expected 5"):
        store.keep([1, 2], [3, 4, 5, 6], [torch.zeros(3, 4)])
    for index in range(4):
        store.keep([index, 1], [2, 3, 4], [torch.zeros(2, 4), torch.full((2, 4), float(index))])
    assert len(store) == 3 and store.bytes == 3 * 64
    assert store.get(Sample([0, 1], [2, 3, 4], [0.0] * 3, "")) is None  # the oldest went first
    assert float(store.get(Sample([3, 1], [2, 3, 4], [0.0] * 3, ""))[1][0, 0]) == 3.0
    with store.recording():
        model.layers[1](torch.ones(1, 2, 4))
        assert store.take().shape == (1, 2, 4)
    model.layers[1](torch.ones(1, 2, 4))  # not recording
    with store.recording(), pytest.raises(RuntimeError, match="recorded nothing"):
        store.take()


def test_the_update_paths_benchmark_compares_both_paths_on_one_batch(make_tiny_agent, untied_model_dir):
    import importlib.util

    spec = importlib.util.spec_from_file_location("_test_update_paths", Path(__file__).parents[1] / "benchmarks" / "update_paths.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    agent = make_tiny_agent(model=str(untied_model_dir), trainable_layers=1, seed=9, stop_strings=("e",))
    samples = rollouts(agent, num_samples=2)
    assert bench.measure(agent, samples, [0.0] * len(samples), rounds=1) is None
    found = bench.measure(agent, samples, advantages(samples), rounds=2)
    assert found["reused_samples"] == found["trained_samples"] == len(samples)
    assert len(found["all"]["kept"]) == len(found["all"]["full"]) == 2
    assert found["gap_kept_vs_full"] < 1e-4 and found["gap_micro_batches"] < 1e-4  # fp32
    assert all(p.grad is None for p in agent.model.parameters())  # nothing left for the real update
