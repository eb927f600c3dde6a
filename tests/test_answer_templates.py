"""Answer templates: Prompt.segments, forced tokens, their masking, and prefix sharing.

The template logic (absolutezero_policy.templating) is tested with a character-level
fake decoder so every step is exact; the backend, agent and learner are tested with the
tiny random Llama of conftest.py, so the forced text really goes through the model.
"""

from __future__ import annotations

import pytest
import torch

from absolutezero.protocol import Prompt, Sample, Segment, fill_template
from absolutezero_policy.templating import RowCursor

MESSAGES = ({"role": "user", "content": "write a value"},)


def chars(ids: list[int]) -> str:
    return "".join(chr(i) for i in ids)


def cursor(steps, stop_ids=(0,), stop_strings=()) -> RowCursor:
    """Steps as (stop, then) or (stop, then, max_tokens)."""
    return RowCursor([(step[0], [ord(c) for c in step[1]], step[2] if len(step) > 2 else None) for step in steps],
                     frozenset(stop_ids), tuple(stop_strings), chars)


def feed(row: RowCursor, text: str) -> str:
    """Offer ``text`` as sampled characters until the row finishes; what the model was fed."""
    fed = []
    for c in text:
        if row.finished:
            break
        fed.append(chr(row.push(ord(c), -1.0)))
    return "".join(fed)


# -- protocol ----------------------------------------------------------------------------


def test_segments_need_a_stop_and_prompts_need_segments_as_a_tuple():
    with pytest.raises(ValueError, match="non-empty stop"):
        Segment("")
    with pytest.raises(ValueError, match="max_tokens"):
        Segment("\n", max_tokens=0)
    with pytest.raises(ValueError, match="tuple of Segment"):
        Prompt(MESSAGES, segments=[Segment("\n")])  # a list is not accepted


def test_fill_template_joins_parts_and_forced_text_and_checks_the_parts():
    prompt = Prompt(MESSAGES, prefill="A=", segments=(Segment("\n", "B="), Segment(";")))
    assert fill_template(prompt, ["1\n", "2;"]) == "1\nB=2;"
    with pytest.raises(ValueError, match="2 free parts"):
        fill_template(prompt, ["1\n"])
    with pytest.raises(ValueError, match="must end with its stop"):
        fill_template(prompt, ["1", "2;"])
    with pytest.raises(ValueError, match="not contain it before"):
        fill_template(prompt, ["1\n2\n", "2;"])
    with pytest.raises(ValueError, match="no answer template"):
        fill_template(Prompt(MESSAGES), ["x"])


def test_sample_forced_mask_must_match_the_completion():
    with pytest.raises(ValueError, match="forced"):
        Sample([1], [2, 3], [0.0, 0.0], "ab", forced=[True])
    sample = Sample([1], [2, 3], [0.0, -1.0], "ab", forced=[True, False])
    assert sample.trained_mask() == [False, True]
    assert Sample([1], [2, 3], [0.0, 0.0], "ab").trained_mask() == [True, True]


# -- the row cursor ------------------------------------------------------------------------


def test_forced_text_follows_each_stop_and_the_row_ends_after_the_last_segment():
    row = cursor([("\n", "]["), (";", "")])
    fed = feed(row, "12\n" + "xx" + "34;" + "more")
    # the two sampled 'x' were replaced by the forced "][", then sampling resumed
    assert fed == "12\n][34;" and row.finished
    assert row.forced == [False, False, False, True, True, False, False, False]
    assert [lp for lp, f in zip(row.logprobs, row.forced) if f] == [0.0, 0.0]


def test_forced_text_containing_the_next_stop_does_not_end_that_segment():
    row = cursor([("```", "\n```input\n"), ("```", "")])
    fed = feed(row, "p```" + "y" * 10 + "3```tail")
    assert fed == "p```\n```input\n3```" and row.finished


def test_an_end_token_inside_a_free_segment_ends_the_row():
    row = cursor([("\n", "X"), (";", "")], stop_ids=(ord("!"),))
    assert feed(row, "ab!cd") == "ab!" and row.finished and row.segment == 0


def test_rows_without_a_template_stop_at_stop_strings():
    row = cursor([], stop_strings=("</answer>",))
    assert feed(row, "42</answer>and more") == "42</answer>" and row.finished
    assert not any(row.forced)


def test_a_free_part_longer_than_its_max_tokens_ends_the_row_truncated():
    row = cursor([("\n", "X", 3), (";", "", 2)])
    assert feed(row, "abcdef") == "abc" and row.finished and row.truncated
    row = cursor([("\n", "X", 3), (";", "", 2)])
    assert feed(row, "a\n" + "." + "zzz") == "a\nXzz" and row.truncated  # the forced X does not count
    row = cursor([("\n", "X", 3)])
    assert feed(row, "ab\n") == "ab\n" and not row.truncated  # the stop within the limit


def test_last_segment_with_forced_text_finishes_after_it():
    row = cursor([("\n", "END")])
    assert feed(row, "v\n......") == "v\nEND" and row.finished


# -- backend, agent and learner with the tiny model -----------------------------------------


def templated_prompt() -> Prompt:
    return Prompt(MESSAGES, prefill="<answer>\n", segments=(Segment(" ", "|forced|"), Segment(".", "")))


def test_agent_generation_follows_the_template_and_marks_forced_tokens(make_tiny_agent):
    agent = make_tiny_agent(max_new_tokens=64)
    prompt = templated_prompt()
    forced_ids = agent.encode_template(prompt)[0][1]
    for sample in agent.generate([prompt], num_samples=6)[0]:
        ids = sample.completion_ids
        assert len(sample.forced) == len(ids) == len(sample.logprobs)
        starts = [i for i in range(len(ids)) if sample.forced[i] and (i == 0 or not sample.forced[i - 1])]
        if not any(sample.forced):  # the random model never wrote a space in 64 tokens
            assert sample.finish_reason == "length" or sample.completion_ids[-1] in agent.backend.stop_token_ids
            continue
        assert len(starts) == 1
        start = starts[0]
        assert ids[start : start + len(forced_ids)] == forced_ids
        assert all(sample.logprobs[i] == 0.0 for i in range(len(ids)) if sample.forced[i])
        before = agent.tokenizer.decode(ids[:start])
        assert before.count(" ") >= 1  # the segment closed on its stop text
        assert "|forced|" in sample.text


def test_learner_ignores_forced_tokens(make_tiny_agent):
    """A sample whose completion is entirely forced gives no gradient; the forced tokens
    of a mixed sample do not change its gradient."""
    agent = make_tiny_agent()
    prompt_ids = agent.encode_prompt(Prompt(MESSAGES))
    learner = agent.learner
    all_forced = Sample(prompt_ids, [11, 12, 13], [0.0] * 3, "", forced=[True] * 3)
    stats = learner.accumulate_gradients([all_forced], [1.0])
    assert stats["trained_samples"] == 0 and stats["tokens"] == 0
    assert all(p.grad is None for p in learner.parameters)

    def gradient(sample: Sample) -> torch.Tensor:
        learner.accumulate_gradients([sample], [1.0])
        return torch.cat([p.grad.flatten() for p in learner.parameters if p.grad is not None]).clone()

    with torch.no_grad():
        old = learner.completion_logprobs([Sample(prompt_ids, [11, 12, 13], [0.0] * 3, "")])[0].tolist()
    free = Sample(prompt_ids, [11, 12, 13], old, "")
    # same ids, the middle one forced with a meaningless recorded logprob
    masked = Sample(prompt_ids, [11, 12, 13], [old[0], 0.0, old[2]], "", forced=[False, True, False])
    only_ends = gradient(masked)
    assert not torch.allclose(only_ends, gradient(free))  # the middle token did count when free
    # the masked sample's gradient is that of the two sampled tokens alone
    learner.optimizer.zero_grad(set_to_none=True)
    new = learner.completion_logprobs([free])[0]
    (-(new[0] + new[2]) / 2).backward()
    expected = torch.cat([p.grad.flatten() for p in learner.parameters if p.grad is not None])
    assert torch.allclose(only_ends, expected, atol=1e-6)


def test_shared_prefixes_are_computed_once_without_changing_the_samples(make_tiny_agent):
    """Identical prompts are prefilled once, and the prefix common to all distinct prompts
    (here the chat template's system prompt) once per chunk; the samples are the same."""
    from absolutezero_policy.hf_backend import MIN_SHARED_PREFIX, common_prefix_length

    prompts = [Prompt(MESSAGES), Prompt(({"role": "user", "content": "another, longer request"},))]
    shared = make_tiny_agent(seed=3, batch_size=8)
    separate = make_tiny_agent(seed=3, batch_size=8)
    separate.backend.share_prefixes = False
    ids = [shared.encode_prompt(p) for p in prompts]
    common = common_prefix_length(ids)
    assert common >= MIN_SHARED_PREFIX
    processed = []
    body = shared.backend.model.base_model
    original = body.forward

    def counting(*args, **kwargs):
        if kwargs["input_ids"].shape[1] > 1:  # prefill passes (decoding feeds one token)
            processed.append(tuple(kwargs["input_ids"].shape))
        return original(*args, **kwargs)

    body.forward = counting
    a = shared.generate(prompts, num_samples=3)
    b = separate.generate(prompts, num_samples=3)
    # one pass over the common prefix, one over the two distinct remainders (6 rows in all)
    assert processed == [(1, common), (2, max(len(x) for x in ids) - common)]
    for row_a, row_b in zip(a, b):
        for x, y in zip(row_a, row_b):
            assert x.completion_ids == y.completion_ids
            assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)
