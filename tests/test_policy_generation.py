"""HF generation backend on the tiny model: shapes, logprobs, stops, seeding, batching."""

from __future__ import annotations

import pytest
import torch

from absolutezero.protocol import Prompt
from absolutezero_policy.hf_backend import HFBackend
from absolutezero_policy.token_choice import top_p_filter


def prompt(text: str, prefill: str = "") -> Prompt:
    return Prompt(messages=({"role": "user", "content": text},), prefill=prefill)


PROMPTS = [
    prompt("Write a function.", prefill="<think>"),
    prompt("A much longer request that certainly tokenises into many more tokens than the first one does."),
    prompt("x"),
]


def ids(samples):
    return [[s.completion_ids for s in group] for group in samples]


def test_shapes_and_sample_fields(make_tiny_agent):
    agent = make_tiny_agent(max_new_tokens=6)
    result = agent.generate(PROMPTS[:2], num_samples=3)
    assert [len(group) for group in result] == [3, 3]
    for group, p in zip(result, PROMPTS[:2]):
        for sample in group:
            assert sample.prompt_ids == agent.encode_prompt(p)
            assert 1 <= len(sample.completion_ids) <= 6
            assert len(sample.logprobs) == len(sample.completion_ids)
            assert all(lp <= 0.0 for lp in sample.logprobs)
            assert sample.finish_reason in ("stop", "length")
            if sample.finish_reason == "length":
                assert len(sample.completion_ids) == 6
            assert sample.text == agent.tokenizer.decode(sample.completion_ids, skip_special_tokens=True)
    assert agent.generate([], num_samples=2) == []
    with pytest.raises(ValueError, match="num_samples must be >= 1"):
        agent.generate(PROMPTS[:1], num_samples=0)


def test_prompt_ids_are_chat_template_then_prefill(make_tiny_agent):
    agent = make_tiny_agent()
    tokenizer = agent.tokenizer
    encoded = agent.encode_prompt(PROMPTS[0])
    template = tokenizer.apply_chat_template(
        [dict(m) for m in PROMPTS[0].messages], add_generation_prompt=True, tokenize=False
    )
    head = tokenizer(template, add_special_tokens=False)["input_ids"]
    tail = tokenizer("<think>", add_special_tokens=False)["input_ids"]
    assert encoded == head + tail
    assert tokenizer.decode(encoded).endswith("<|im_start|>assistant\n<think>")


def test_logprobs_match_a_fresh_forward_pass(make_tiny_agent):
    agent = make_tiny_agent(max_new_tokens=10)
    samples = [s for group in agent.generate(PROMPTS, num_samples=2) for s in group]
    for sample in samples:
        full = torch.tensor([sample.prompt_ids + sample.completion_ids])
        with torch.no_grad():
            logits = agent.model(full).logits[0].float()
        start = len(sample.prompt_ids)
        expected = torch.log_softmax(logits[start - 1 : -1], dim=-1)
        expected = expected.gather(-1, torch.tensor(sample.completion_ids)[:, None]).squeeze(-1)
        assert torch.allclose(torch.tensor(sample.logprobs), expected, atol=1e-4)


def test_logprobs_are_untempered(make_tiny_agent):
    cold = make_tiny_agent(temperature=0.5, top_p=0.9)
    [[sample]] = cold.generate(PROMPTS[:1])
    recomputed = cold.learner.completion_logprobs([sample])[0].detach()
    assert torch.allclose(torch.tensor(sample.logprobs), recomputed, atol=1e-4)


def test_bf16_generation_logprobs_are_close_to_fp32(make_tiny_agent):
    agent = make_tiny_agent(dtype="bfloat16")
    assert next(agent.backend.model.parameters()).dtype == torch.bfloat16
    assert agent.model.dtype == torch.float32
    [[sample]] = agent.generate(PROMPTS[:1])
    with torch.no_grad():
        recomputed = agent.learner.completion_logprobs([sample])[0]
    assert torch.allclose(torch.tensor(sample.logprobs), recomputed, atol=0.1)


def test_greedy_is_deterministic_and_ignores_the_generator(make_tiny_agent):
    agent = make_tiny_agent()
    first = agent.generate(PROMPTS, num_samples=2, greedy=True)
    second = agent.generate(PROMPTS, num_samples=2, greedy=True)
    assert ids(first) == ids(second)
    assert all(group[0].completion_ids == group[1].completion_ids for group in first)


def test_seeded_sampling_is_reproducible_and_seed_dependent(make_tiny_agent):
    agent = make_tiny_agent(seed=7, max_new_tokens=6)
    assert agent.generator.initial_seed() == 7
    a = agent.generate(PROMPTS, num_samples=3)
    agent.generator.manual_seed(7)
    b = agent.generate(PROMPTS, num_samples=3)
    agent.generator.manual_seed(8)
    c = agent.generate(PROMPTS, num_samples=3)
    assert ids(a) == ids(b)
    assert ids(a) != ids(c)
    # sampling at temperature 1 over a 49k vocabulary: the 3 samples differ
    assert len({tuple(s.completion_ids) for s in a[1]}) > 1


def test_sampling_does_not_touch_the_global_rng(make_tiny_agent):
    agent = make_tiny_agent()
    before = torch.random.get_rng_state()
    agent.generate(PROMPTS, num_samples=2)
    assert torch.equal(before, torch.random.get_rng_state())


def test_batched_generation_matches_unbatched(make_tiny_agent):
    batched = make_tiny_agent(batch_size=8, max_new_tokens=10)
    single = make_tiny_agent(batch_size=1, max_new_tokens=10)
    lengths = {len(batched.encode_prompt(p)) for p in PROMPTS}
    assert len(lengths) == 3  # really exercises left padding
    together = batched.generate(PROMPTS, greedy=True)
    alone = single.generate(PROMPTS, greedy=True)
    assert ids(together) == ids(alone)
    for [x], [y] in zip(together, alone):
        assert torch.allclose(torch.tensor(x.logprobs), torch.tensor(y.logprobs), atol=1e-4)


def test_stop_string_ends_the_completion(tiny_model_dir, make_tiny_agent):
    free = make_tiny_agent(stop_strings=(), max_new_tokens=12)
    [[reference]] = free.generate(PROMPTS[:1], greedy=True)
    tokenizer = free.tokenizer
    pieces = [tokenizer.decode([t]) for t in reference.completion_ids]
    k = next(i for i, piece in enumerate(pieces) if i >= 2 and piece.strip())
    stop = pieces[k].strip()
    stopped_agent = make_tiny_agent(stop_strings=(stop,), max_new_tokens=12)
    [[stopped]] = stopped_agent.generate(PROMPTS[:1], greedy=True)
    assert stopped.finish_reason == "stop"
    assert stop in stopped.text
    assert stop not in tokenizer.decode(stopped.completion_ids[:-1])
    assert stopped.completion_ids == reference.completion_ids[: len(stopped.completion_ids)]
    assert len(stopped.completion_ids) <= k + 1


def test_stop_token_is_kept_and_ends_the_completion(make_tiny_agent):
    agent = make_tiny_agent(stop_strings=(), max_new_tokens=12)
    [[reference]] = agent.generate(PROMPTS[:1], greedy=True)
    stop_id = reference.completion_ids[3]
    backend = HFBackend(
        agent.backend.model,
        agent.tokenizer,
        stop_token_ids=[stop_id],
        stop_strings=(),
        batch_size=2,
        max_new_tokens=12,
        temperature=1.0,
        top_p=1.0,
    )
    prompt_ids = reference.prompt_ids
    [sample] = backend.generate([prompt_ids], greedy=True, seeds=[0])
    first = reference.completion_ids.index(stop_id)
    assert sample.completion_ids == reference.completion_ids[: first + 1]
    assert sample.finish_reason == "stop"


def test_top_p_filter_keeps_the_smallest_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = torch.isfinite(top_p_filter(logits, 0.7))
    assert kept.tolist() == [[True, True, False, False]]
    kept = torch.isfinite(top_p_filter(logits, 0.79))
    assert kept.tolist() == [[True, True, False, False]]
    kept = torch.isfinite(top_p_filter(logits, 0.81))
    assert kept.tolist() == [[True, True, True, False]]
    assert torch.isfinite(top_p_filter(logits, 1e-9)).tolist() == [[True, False, False, False]]
    shuffled = logits[:, [2, 0, 3, 1]]
    assert torch.isfinite(top_p_filter(shuffled, 0.7)).tolist() == [[False, True, False, True]]


def test_tiny_top_p_sampling_equals_greedy(make_tiny_agent):
    greedy = make_tiny_agent().generate(PROMPTS, greedy=True)
    nucleus = make_tiny_agent(top_p=1e-9).generate(PROMPTS)
    assert ids(greedy) == ids(nucleus)


@pytest.mark.parametrize(
    "option, message",
    [({"temperature": 0.0}, "temperature must be > 0"), ({"top_p": 1.5}, "top_p must be in"), ({"batch_size": 0}, "batch_size")],
)
def test_bad_sampling_settings_are_rejected(make_tiny_agent, option, message):
    with pytest.raises(ValueError, match=message):
        make_tiny_agent(**option)


def test_a_completion_depends_on_its_seed_not_on_its_batch(make_tiny_agent):
    """Each row samples from its own seeded generator, so splitting a batch across
    torchrun ranks (or batching it differently) draws the same completions."""
    agent = make_tiny_agent(max_new_tokens=6)
    ids_ = [agent.encode_prompt(p) for p in PROMPTS]
    together = agent.backend.generate(ids_, greedy=False, seeds=[11, 12, 13][: len(ids_)])
    alone = agent.backend.generate(ids_[-1:], greedy=False, seeds=[[11, 12, 13][len(ids_) - 1]])
    assert together[-1].completion_ids == alone[0].completion_ids
    other = agent.backend.generate(ids_[-1:], greedy=False, seeds=[99])
    assert other[0].completion_ids != alone[0].completion_ids
    with pytest.raises(ValueError, match="seeds for"):
        agent.backend.generate(ids_, greedy=False, seeds=[1])


def test_the_output_head_only_ever_sees_one_contiguous_row_per_sequence(make_tiny_agent):
    """The head gets a contiguous ``[rows, hidden]`` matrix at every prefill and decoding
    step: given transformers' ``logits_to_keep=1`` slice ``[rows, 1, hidden]`` instead,
    torch expanded the 152k x 896 head once per row (8 s instead of 0.03 s per prefill of
    12 rows of Qwen2.5-Coder-0.5B in bf16)."""
    agent = make_tiny_agent(seed=0, batch_size=4, max_new_tokens=5)
    seen = []
    head = agent.backend.model.get_output_embeddings()
    handle = head.register_forward_pre_hook(lambda module, args: seen.append((args[0].dim(), args[0].is_contiguous())))
    try:
        prompts = [Prompt(({"role": "user", "content": "x" * n},)) for n in (3, 9, 9, 20)]
        agent.generate(prompts, num_samples=2)
    finally:
        handle.remove()
    assert seen and set(seen) == {(2, True)}
