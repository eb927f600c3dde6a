"""Prompt-lookup drafts and forced ids fed ahead in decoding (absolutezero_policy.prompt_lookup,
token_choice, hf_backend): fewer model calls, the same samples.

A tiny random model sampled at a low temperature (or greedily) falls into repetition, so
its drafts are often right: the tests see real acceptances, not only rejections.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from absolutezero.config import ConfigError  # noqa: E402
from absolutezero.protocol import Prompt, Segment  # noqa: E402
from absolutezero_policy.prompt_lookup import NgramIndex  # noqa: E402
from absolutezero_policy.token_choice import RowDraws, choose_tokens  # noqa: E402
from tests.conftest import save_tiny_model  # noqa: E402

TEXTS = [
    "def f(x): return x + 1 def f(x): return x + 1",
    "hello there hello there hello",
    "assert f(3) == 4 and f(4) == 5",
]


def test_a_draft_is_what_followed_the_latest_earlier_occurrence_of_the_longest_suffix():
    index = NgramIndex([1, 2, 3, 9, 2, 3, 7, 8, 1, 2, 3], max_ngram=3, min_ngram=2)
    assert index.draft(2) == [9, 2]  # (1, 2, 3) occurred at the start, followed by 9, 2
    index.extend([5, 2, 3])  # now only (2, 3) matches; its latest continuation is 5
    assert index.draft(3) == [5, 2, 3]
    assert index.draft(0) == []
    assert NgramIndex([4, 5, 6], min_ngram=2).draft(4) == []  # (5, 6) never occurred before
    assert NgramIndex([7, 7], min_ngram=1).draft(3) == [7]  # only what exists is proposed
    with pytest.raises(ValueError, match="min_ngram"):
        NgramIndex(min_ngram=3, max_ngram=2)


def test_draws_are_the_generators_sequence_one_per_consumed_position():
    draws = RowDraws(torch.Generator().manual_seed(3))
    expected = torch.Generator().manual_seed(3)
    sequence = [float(torch.rand(1, generator=expected)) for _ in range(4)]
    assert draws.peek(3) == sequence[:3]
    assert draws.peek(1) == sequence[:1]  # peeking consumes nothing
    draws.consume()
    draws.consume()
    assert draws.peek(2) == sequence[2:4]


def test_the_chosen_token_is_the_inverse_cdf_of_its_draw_and_its_logprob_untempered():
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]]))
    tokens, logprobs = choose_tokens(logits, [0.25, 0.8], temperature=1.0, top_p=1.0)
    assert tokens == [1, 2]  # CDFs 0.1/0.3/1.0 and 0.5/0.75/1.0
    assert logprobs == pytest.approx([torch.log(torch.tensor(0.2)).item(), torch.log(torch.tensor(0.25)).item()])
    assert choose_tokens(logits, None, temperature=1.0, top_p=1.0)[0] == [2, 0]
    assert choose_tokens(logits, [0.99, 0.99], temperature=1.0, top_p=0.5)[0] == [2, 0]  # only the nucleus


def _generate(agent, prompts, *, greedy, budget):
    """The samples and the width (positions per row) of every decoding call."""
    agent.backend.lookup_budget = budget
    widths = []
    original = agent.backend._forward

    def counting(**inputs):
        if "fed" in inputs:  # the decoding loop's calls name it (None at one position per row); prefills do not
            widths.append(inputs["input_ids"].shape[1])
        return original(**inputs)

    agent.backend._forward = counting
    try:
        return agent.generate(prompts, num_samples=2, greedy=greedy), widths
    finally:
        agent.backend._forward = original


@pytest.mark.parametrize("greedy", [True, False], ids=["greedy", "sampled"])
def test_drafts_give_the_same_samples_in_fewer_calls(make_tiny_agent, greedy):
    prompts = [Prompt(({"role": "user", "content": text},)) for text in TEXTS]
    without = make_tiny_agent(seed=2, max_new_tokens=40, temperature=0.05)
    with_drafts = make_tiny_agent(seed=2, max_new_tokens=40, temperature=0.05)
    a, plain_calls = _generate(without, prompts, greedy=greedy, budget=0)
    b, draft_calls = _generate(with_drafts, prompts, greedy=greedy, budget=32)
    assert plain_calls and set(plain_calls) == {1}  # one token per row and call
    assert max(draft_calls) > 1
    assert len(draft_calls) < 0.8 * len(plain_calls)
    for row_a, row_b in zip(a, b):
        for x, y in zip(row_a, row_b):
            assert x.completion_ids == y.completion_ids
            assert x.finish_reason == y.finish_reason
            assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)
    assert max(len(s.completion_ids) for row in a for s in row) == 40  # the limit holds with drafts too


def _templated(text: str) -> Prompt:
    return Prompt(({"role": "user", "content": text},), prefill="<answer>\n",
                  segments=(Segment(" ", "|forced and long text|"), Segment(".", "")))


def test_forced_ids_are_fed_ahead_and_stay_masked(make_tiny_agent):
    """An answer template's forced text goes in with the token before it; the samples,
    their forced masks and their log-probabilities are those of the one-token loop."""
    prompt = _templated(TEXTS[0])
    without = make_tiny_agent(seed=4, max_new_tokens=48, temperature=0.7)
    with_drafts = make_tiny_agent(seed=4, max_new_tokens=48, temperature=0.7)
    a, _ = _generate(without, [prompt] * 3, greedy=False, budget=0)
    b, draft_calls = _generate(with_drafts, [prompt] * 3, greedy=False, budget=64)
    forced = [s for row in b for s in row if any(s.forced)]
    assert forced, "no row reached its template's forced text"
    assert max(draft_calls) > 1
    for row_a, row_b in zip(a, b):
        for x, y in zip(row_a, row_b):
            assert (x.completion_ids, x.forced) == (y.completion_ids, y.forced)
            assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)


def test_block_inputs_kept_with_drafts_are_the_full_pass_inputs(make_tiny_agent, tmp_path):
    model_dir = save_tiny_model(tmp_path / "untied", transformers.LlamaConfig, transformers.LlamaForCausalLM, 77,
                                num_hidden_layers=3, tie_word_embeddings=False)
    agent = make_tiny_agent(model=str(model_dir), seed=1, max_new_tokens=48, temperature=0.7, trainable_layers=1)
    store = agent.backend.block_inputs
    assert store is not None
    # drafts of this model are rarely right, forced ids always: both paths are exercised
    groups, calls = _generate(agent, [_templated(text) for text in TEXTS], greedy=False, budget=64)
    assert max(calls) > 1
    samples = [s for group in groups for s in group]
    assert any(any(s.forced) for s in samples), "no row reached its forced text"
    for sample in samples:
        kept = torch.cat(store.get(sample))
        ids = torch.tensor([list(sample.prompt_ids) + list(sample.completion_ids)[:-1]])
        with torch.no_grad(), store.recording(True):
            agent.backend.model(input_ids=ids)
            full = store.take()[0]
        assert kept.shape == full.shape
        assert torch.allclose(kept, full, atol=1e-4)


def test_a_negative_lookup_budget_is_refused_before_loading(make_tiny_agent):
    with pytest.raises(ConfigError, match="lookup_budget"):
        make_tiny_agent(lookup_budget=-1)


def test_the_lookup_benchmark_replays_the_same_calls_with_each_budget(make_tiny_agent):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "lookup_decoding.py"
    spec = importlib.util.spec_from_file_location("_test_lookup_decoding", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    agent = make_tiny_agent(seed=2, max_new_tokens=40, temperature=0.05)
    prompts = [agent.encode_prompt(Prompt(({"role": "user", "content": text},))) for text in TEXTS]
    calls = [{"prompt_ids": prompts, "greedy": False, "seeds": [1, 2, 3], "templates": None}]
    off = bench._replay(agent.backend, calls, 0, repeat=0)
    on = bench._replay(agent.backend, calls, 32, repeat=0)
    assert off["tokens"] == on["tokens"] > 0  # the same samples (fp32), so the same work
    assert 0 < on["calls"] < off["calls"]
    assert agent.backend._forward.__name__ == "_forward"  # the counter is removed
