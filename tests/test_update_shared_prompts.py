"""The update's shared-prompt forward (absolutezero_policy.shared_prompts) against the
full-sequence pass it replaces: same per-token log-probabilities and same gradients of
every trained parameter, to fp32 rounding.

Every comparison is against the same code with sharing switched off, on a tiny random
Qwen2 (3 blocks, vocabulary 96, fp32), with batches that share a 20-token prefix, repeat
prompts, vary prompt and completion lengths and contain the pad id as a real token. The
tests also check that the shared path really ran in stages, so they cannot pass by both
sides taking the full path.
"""

from __future__ import annotations

import copy
import logging

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from absolutezero.protocol import Sample  # noqa: E402
from absolutezero_policy.learner import Learner  # noqa: E402
from absolutezero_policy.shared_prompts import layout, unsupported_reason  # noqa: E402
from absolutezero_policy.trainable import select_trainable  # noqa: E402

PAD = 0
VOCAB = 96
ATOL = 1e-5


def tiny_qwen(**overrides) -> torch.nn.Module:
    settings = dict(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        tie_word_embeddings=False, pad_token_id=PAD,
    )
    settings.update(overrides)
    attention = settings.pop("attn_implementation", "sdpa")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**settings))
    model.config._attn_implementation = attention
    return model.float()


def _ids(generator: torch.Generator, count: int) -> list[int]:
    return torch.randint(0, VOCAB, (count,), generator=generator).tolist()


def shared_batch(seed: int = 0) -> list[Sample]:
    """Two tasks' rollouts, 3 and 2 of each, and three single prompts: a 20-token common
    prefix, tails of 1 to 6 tokens, completions of 1 to 7; the pad id inside some."""
    generator = torch.Generator().manual_seed(seed)
    prefix = _ids(generator, 20)
    prefix[5] = PAD
    prompts = [prefix + _ids(generator, n) for n in (4, 1, 6, 3, 2)]
    prompts[2][-2] = PAD
    rows = [prompts[0]] * 3 + [prompts[1]] * 2 + prompts[2:]
    samples = []
    for index, prompt in enumerate(rows):
        completion = _ids(generator, 1 + (index * 3) % 7)
        if index == 3:
            completion[0] = PAD
        samples.append(Sample(prompt_ids=list(prompt), completion_ids=completion, logprobs=[0.0] * len(completion), text=""))
    return samples


def unshared_batch(seed: int = 1, repeat: bool = False) -> list[Sample]:
    """Prompts of 3 to 9 tokens whose first tokens all differ (no common prefix); with
    ``repeat`` the first prompt appears twice."""
    generator = torch.Generator().manual_seed(seed)
    prompts = [[first] + _ids(generator, 2 + index) for index, first in enumerate((5, 6, 7, 8))]
    if repeat:
        prompts.append(list(prompts[0]))
    return [
        Sample(prompt_ids=p, completion_ids=_ids(generator, 2 + i % 3), logprobs=[0.0] * (2 + i % 3), text="")
        for i, p in enumerate(prompts)
    ]


def make_learner(model: torch.nn.Module, share: bool, **options) -> Learner:
    settings = dict(
        pad_token_id=PAD, learning_rate=1e-3, weight_decay=0.0, grad_clip=1.0, clip_ratio=0.2,
        micro_batch=4, autocast_bf16=False,
    )
    settings.update(options)
    return Learner(model, share_prompts=share, **settings)


def count_stages(learner: Learner) -> list[int]:
    """Records the number of stages of every forward pass of ``learner``."""
    seen: list[int] = []
    hidden = learner.scorer._hidden

    def spy(plan, *rest):
        seen.append(len(plan.stages))
        return hidden(plan, *rest)

    learner.scorer._hidden = spy
    return seen


def behaviour(samples: list[Sample], learner: Learner, seed: int = 3) -> list[Sample]:
    """The samples with sampler logprobs a little off the model's, so the clip and the
    TIS weight both act."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        exact = learner.completion_logprobs(samples)
    out = []
    for sample, logprobs in zip(samples, exact):
        noisy = logprobs + 0.4 * torch.randn(logprobs.shape, generator=generator)
        out.append(Sample(sample.prompt_ids, sample.completion_ids, noisy.tolist(), ""))
    return out


def gradients(learner: Learner, samples: list[Sample], advantages: list[float]) -> tuple[dict, dict]:
    stats = learner.accumulate_gradients(samples, advantages)
    grads = {n: p.grad.clone() for n, p in learner.model.named_parameters() if p.requires_grad}
    assert grads and all(g is not None for g in grads.values())
    return grads, stats


def assert_same_gradients(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=ATOL, rtol=1e-4), (name, float((a[name] - b[name]).abs().max()))


# -- the layout --------------------------------------------------------------------------


def test_layout_computes_each_prompt_once_and_the_common_prefix_once():
    samples = shared_batch()
    full, shared = layout(samples, PAD), layout(samples, PAD, share=True)
    assert len(full.stages) == 1 and full.stages[0].parent is None
    prefix, tails, completions = shared.stages
    assert prefix.input_ids.shape == (1, 20)  # every distinct prompt has >= 1 own token
    assert tails.input_ids.shape[0] == 5 and completions.input_ids.shape[0] == len(samples)
    assert completions.parent.tolist() == [0, 0, 0, 1, 1, 2, 3, 4]
    assert shared.prompt_width == 0 and torch.equal(shared.targets, full.targets)
    assert shared.tokens < full.tokens
    # every row attends to exactly its own prompt + completion, at the same positions
    for row, sample in enumerate(samples):
        mask = completions.attention_mask[row].bool()
        assert int(mask.sum()) == len(sample.prompt_ids) + len(sample.completion_ids)
        own = completions.attention_mask[row, -completions.input_ids.shape[1] :].bool()
        full_columns = full.stages[0].attention_mask[row].bool()
        assert completions.position_ids[row][own].tolist() == full.stages[0].position_ids[row][full_columns][-own.sum() :].tolist()


def test_layout_without_repeats_or_common_prefix_is_the_full_pass():
    samples = unshared_batch()
    shared, full = layout(samples, PAD, share=True), layout(samples, PAD)
    assert len(shared.stages) == 1
    for a, b in zip(
        (shared.stages[0].input_ids, shared.stages[0].attention_mask, shared.stages[0].position_ids, shared.targets),
        (full.stages[0].input_ids, full.stages[0].attention_mask, full.stages[0].position_ids, full.targets),
    ):
        assert torch.equal(a, b)
    assert len(layout(unshared_batch(repeat=True), PAD, share=True).stages) == 2  # tails, completions


# -- log-probabilities ---------------------------------------------------------------------


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("batch", ["shared", "unshared", "repeated", "single"])
def test_logprobs_match_the_full_pass(attention, batch):
    samples = {
        "shared": shared_batch(), "unshared": unshared_batch(), "repeated": unshared_batch(repeat=True),
        "single": shared_batch()[:1],
    }[batch]
    model = tiny_qwen(attn_implementation=attention)
    shared, full = make_learner(model, True), make_learner(model, False)
    stages = count_stages(shared)
    with torch.no_grad():
        a, b = shared.completion_logprobs(samples), full.completion_logprobs(samples)
    assert stages == [{"shared": 3, "unshared": 1, "repeated": 2, "single": 1}[batch]]
    for x, y, sample in zip(a, b, samples):
        assert x.shape == y.shape == (len(sample.completion_ids),)
        assert torch.allclose(x, y, atol=ATOL, rtol=0), float((x - y).abs().max())


# -- gradients ---------------------------------------------------------------------------


@pytest.mark.parametrize("trainable_layers", [0, 1])
@pytest.mark.parametrize("correction", ["ratio", "tis"])
def test_gradients_match_the_full_pass(trainable_layers, correction):
    model = tiny_qwen()
    select_trainable(model, trainable_layers)
    twin = copy.deepcopy(model)
    shared = make_learner(model, True, correction=correction)
    full = make_learner(twin, False, correction=correction)
    stages = count_stages(shared)
    samples = behaviour(shared_batch() + unshared_batch(seed=4, repeat=True), full)
    advantages = [((-1) ** i) * (0.5 + 0.1 * i) for i in range(len(samples))]
    advantages[2] = 0.0  # skipped, still counted
    (a, stats_a), (b, stats_b) = gradients(shared, samples, advantages), gradients(full, samples, advantages)
    assert max(stages) > 1, stages  # the shared learner really ran in stages
    # "ratio" clips some tokens; "tis" (r = 1) truncates some importance weights instead
    acting = stats_a["clip_fraction"] if correction == "ratio" else stats_a["tis_truncated"]
    assert acting > 0
    assert stats_a["clip_fraction"] == pytest.approx(stats_b["clip_fraction"])
    for key in ("loss", "approx_kl", "ratio_mean", "tokens") + (("tis_weight_mean", "tis_truncated") if correction == "tis" else ()):
        assert stats_a[key] == pytest.approx(stats_b[key], rel=1e-5, abs=1e-7), key
    if trainable_layers:
        assert "model.layers.2.self_attn.k_proj.weight" in a and "model.layers.1.self_attn.k_proj.weight" not in a
    assert_same_gradients(a, b)


def test_gradients_match_with_one_sample_per_micro_batch_and_without_a_prefix():
    for samples, micro in ((shared_batch()[:4], 1), (unshared_batch(seed=5, repeat=True), 4)):
        model = tiny_qwen()
        select_trainable(model, 1)
        twin = copy.deepcopy(model)
        shared, full = make_learner(model, True, micro_batch=micro), make_learner(twin, False, micro_batch=micro)
        samples = behaviour(samples, full)
        advantages = [1.0, -0.5, 0.25, -1.0, 0.75][: len(samples)]
        assert_same_gradients(gradients(shared, samples, advantages)[0], gradients(full, samples, advantages)[0])


def test_bf16_autocast_runs_in_stages_close_to_the_full_pass():
    model = tiny_qwen()
    shared, full = make_learner(model, True, autocast_bf16=True), make_learner(model, False, autocast_bf16=True)
    samples = shared_batch()
    with torch.no_grad():
        for x, y in zip(shared.completion_logprobs(samples), full.completion_logprobs(samples)):
            assert torch.allclose(x, y, atol=0.1), float((x - y).abs().max())


# -- where sharing is off --------------------------------------------------------------------


def test_gradient_checkpointing_falls_back_to_the_full_pass_with_the_same_gradients(caplog):
    model = tiny_qwen()
    select_trainable(model, 1)
    twin = copy.deepcopy(model)
    with caplog.at_level(logging.INFO, logger="absolutezero_policy.learner"):
        checkpointed = make_learner(model, True, gradient_checkpointing=True)
    assert not checkpointed.share_prompts
    assert "share_prompts_in_update off (gradient checkpointing" in caplog.text
    stages = count_stages(checkpointed)
    shared = make_learner(twin, True)
    assert shared.share_prompts
    samples = behaviour(shared_batch(), shared)
    advantages = [0.5, -1.0, 1.0, 0.3, -0.2, 0.9, -0.7, 0.4]
    a, _ = gradients(checkpointed, samples, advantages)
    assert set(stages) == {1}
    assert_same_gradients(a, gradients(shared, samples, advantages)[0])


def test_a_sliding_window_cache_is_not_shared(caplog):
    model = tiny_qwen(use_sliding_window=True, sliding_window=8, max_window_layers=1)
    assert "DynamicSlidingWindowLayer" in (unsupported_reason(model) or "")
    with caplog.at_level(logging.WARNING, logger="absolutezero_policy.learner"):
        learner = make_learner(model, True)
    assert not learner.share_prompts and "share_prompts_in_update off" in caplog.text
    assert unsupported_reason(tiny_qwen()) is None
