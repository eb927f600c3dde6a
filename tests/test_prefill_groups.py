"""Prefill in groups of similar length, caches joined for decoding
(absolutezero_policy.prefill_groups): less padding, the same samples."""

from __future__ import annotations

import pytest

from absolutezero.protocol import Prompt
from absolutezero_policy.hf_backend import common_prefix_length
from absolutezero_policy.prefill_groups import length_groups


def test_groups_cover_every_prompt_once_and_bound_the_padding():
    lengths = [5, 300, 7, 6, 280, 40, 41, 290, 44, 6]
    groups = length_groups(lengths, slack=1.25)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for group in groups:
        chosen = [lengths[i] for i in group]
        assert max(chosen) * len(chosen) <= 1.25 * sum(chosen)
    assert len(groups) == 3  # short, middle, long
    assert length_groups([], 1.25) == [] and length_groups([9, 9, 9], 1.0) == [[0, 1, 2]]
    with pytest.raises(ValueError, match="slack"):
        length_groups([1], 0.5)


def _prompts() -> list[Prompt]:
    texts = ["hi", "hello", "a much longer request " * 12, "another quite long request " * 11, "mid length " * 4, "hi"]
    return [Prompt(({"role": "user", "content": text},)) for text in texts]


@pytest.mark.parametrize("greedy", [True, False])
def test_grouped_prefill_gives_the_samples_of_one_padded_batch(make_tiny_agent, greedy):
    grouped = make_tiny_agent(seed=5, batch_size=8, max_new_tokens=6)
    single = make_tiny_agent(seed=5, batch_size=8, max_new_tokens=6)
    single.backend._joinable = False  # one left-padded batch, as before grouping
    passes = []
    body = grouped.backend.model.base_model
    original = body.forward

    def counting(*args, **kwargs):
        if kwargs["input_ids"].shape[1] > 1:
            passes.append(tuple(kwargs["input_ids"].shape))
        return original(*args, **kwargs)

    body.forward = counting
    a = grouped.generate(_prompts(), num_samples=2, greedy=greedy)
    b = single.generate(_prompts(), num_samples=2, greedy=greedy)
    assert len(passes) >= 3  # the shared prefix, then at least two length groups
    padded = sum(rows * width for rows, width in passes[1:])
    widest = max(width for _, width in passes[1:])
    assert padded < 5 * widest  # five distinct tails: one batch would pad all to the widest
    for row_a, row_b in zip(a, b):
        for x, y in zip(row_a, row_b):
            assert x.completion_ids == y.completion_ids
            assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)


def test_prompts_of_one_length_group_keep_their_order(make_tiny_agent):
    """Tails of similar length make one group; its members come sorted by length, and the
    rows must still come back in the prompts' order (a regression: the one-group path
    once returned them in length order, so completions went to the wrong prompts)."""
    texts = ["alpha beta gamma delta epsilon zeta", "eta theta", "iota kappa lambda mu", "nu xi omicron"]
    prompts = [Prompt(({"role": "user", "content": text},)) for text in texts]
    agent = make_tiny_agent(seed=5, batch_size=8, max_new_tokens=6)
    ids = [agent.encode_prompt(p) for p in prompts]
    shared = common_prefix_length(ids)
    groups = length_groups([len(p) - shared for p in ids])
    assert len(groups) == 1 and groups[0] != sorted(groups[0])  # the case that broke
    together = agent.generate(prompts, greedy=True)
    alone = [agent.generate([p], greedy=True)[0] for p in prompts]
    assert [s[0].completion_ids for s in together] == [s[0].completion_ids for s in alone]
    for row_together, row_alone in zip(together, alone):
        assert row_together[0].logprobs == pytest.approx(row_alone[0].logprobs, abs=1e-4)
    firsts = [round(s[0].logprobs[0], 3) for s in alone]
    assert len(set(firsts)) == len(firsts)  # each prompt's own: a permutation would show
