"""The learner's memory bounds change nothing but memory: token-budget micro-batches,
chunked logits and activation checkpointing give the gradient of the plain computation
(to rounding), and the prompt limit drops over-long prompts instead of truncating them."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from absolutezero.protocol import PROMPT_TOO_LONG, Prompt, Sample  # noqa: E402
from absolutezero_policy.learner import Learner  # noqa: E402
from absolutezero_policy.token_logprobs import pack_micro_batches, padded_tokens  # noqa: E402


def _batch(vocab: int, count: int = 9, seed: int = 3) -> tuple[list[Sample], list[float]]:
    generator = torch.Generator().manual_seed(seed)
    samples, advantages = [], []
    for index in range(count):
        prompt = torch.randint(1, vocab, (2 + index % 5,), generator=generator).tolist()
        completion = torch.randint(1, vocab, (1 + (index * 7) % 11,), generator=generator).tolist()
        logprobs = (-torch.rand(len(completion), generator=generator) * 5).tolist()
        samples.append(Sample(prompt_ids=prompt, completion_ids=completion, logprobs=logprobs, text=""))
        advantages.append(float(torch.randn(1, generator=generator)))
    return samples, advantages


def _gradients(model_dir, **options) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    from absolutezero_policy.trainable import select_trainable

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    select_trainable(model, options.pop("trainable_layers", 0))
    learner = Learner(
        model, pad_token_id=0, learning_rate=1e-3, weight_decay=0.0, grad_clip=None, clip_ratio=0.2,
        micro_batch=options.pop("micro_batch", 2), autocast_bf16=False, **options,
    )
    samples, advantages = _batch(model.config.vocab_size)
    stats = learner.accumulate_gradients(samples, advantages)
    assert stats["trained_samples"] == len(samples)
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys() and a
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-6, msg=name)


def test_pack_by_token_budget_keeps_order_and_budget():
    samples = [Sample([1] * p, [2] * c, [0.0] * c, "") for p, c in [(2, 1), (2, 2), (3, 3), (3, 9), (1, 1)]]
    batches = pack_micro_batches(samples, max_tokens=12)
    assert [s for batch in batches for s in batch] == samples  # nothing lost, order kept
    for batch in batches:
        assert len(batch) == 1 or padded_tokens(batch) <= 12
    # the 12-token sample alone, the rest packed two or three at a time
    assert [len(b) for b in batches] == [2, 1, 1, 1]
    assert pack_micro_batches(samples, max_samples=2) == [samples[:2], samples[2:4], samples[4:]]
    # a sample over the budget is a micro-batch of its own (the floor), never split or dropped
    assert pack_micro_batches(samples, max_tokens=3) == [[s] for s in samples]


def test_token_budget_micro_batches_give_the_unpacked_gradient(tiny_model_dir):
    whole = _gradients(tiny_model_dir, micro_batch=64)
    packed = _gradients(tiny_model_dir, max_tokens_per_micro_batch=20)
    _assert_same(whole, packed)


def test_chunked_logits_give_the_same_gradient(tiny_model_dir):
    _assert_same(_gradients(tiny_model_dir), _gradients(tiny_model_dir, logits_chunk_tokens=3))


@pytest.mark.parametrize("trainable_layers", [0, 1])
def test_gradient_checkpointing_gives_the_same_gradient(tiny_model_dir, trainable_layers):
    plain = _gradients(tiny_model_dir, trainable_layers=trainable_layers)
    checkpointed = _gradients(tiny_model_dir, trainable_layers=trainable_layers, gradient_checkpointing=True)
    _assert_same(plain, checkpointed)


def test_checkpointing_keeps_fewer_activations(tiny_model_dir):
    """What autograd keeps for the backward pass shrinks with checkpointing (the
    parameters themselves, which nodes also save, cost nothing extra and are not counted)."""
    from transformers import AutoModelForCausalLM

    saved = {}
    for checkpointing in (False, True):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
        learner = Learner(model, pad_token_id=0, learning_rate=1e-3, weight_decay=0.0, grad_clip=None,
                          clip_ratio=0.2, micro_batch=1, autocast_bf16=False,
                          gradient_checkpointing=checkpointing)
        sample = Sample(list(range(1, 200)), list(range(1, 50)), [0.0] * 49, "")
        total = 0
        weights = {p.data_ptr() for p in model.parameters()}

        def pack(tensor):
            nonlocal total
            if tensor.data_ptr() not in weights:
                total += tensor.numel() * tensor.element_size()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            learner.completion_logprobs([sample])
        saved[checkpointing] = total
    assert 0 < saved[True] < saved[False] / 2


def test_one_process_fsdp2_gives_the_ddp_gradient_step(tiny_model_dir):
    """strategy=fsdp2 in one process (a one-rank group) takes the replica path's step."""
    from transformers import AutoModelForCausalLM

    from absolutezero_policy import sharding

    made = sharding.ensure_process_group()
    try:
        after = {}
        for strategy in ("ddp", "fsdp2"):
            model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
            learner = Learner(model, pad_token_id=0, learning_rate=1e-3, weight_decay=0.0, grad_clip=1.0,
                              clip_ratio=0.2, micro_batch=3, autocast_bf16=False, strategy=strategy)
            samples, advantages = _batch(model.config.vocab_size)
            metrics = learner.step(samples, advantages)
            assert metrics["grad_norm"] > 0
            after[strategy] = {name: t.clone() for name, t in sharding.full_parameters(model)}
        _assert_same(after["ddp"], after["fsdp2"])
    finally:
        if made:
            torch.distributed.destroy_process_group()


def test_prompts_over_the_limit_are_not_generated(make_tiny_agent):
    agent = make_tiny_agent(max_prompt_tokens=40)
    short = Prompt(messages=({"role": "user", "content": "hi"},))
    long = Prompt(messages=({"role": "user", "content": "word " * 200},))
    outputs = agent.generate([short, long, short], num_samples=2)
    assert [s.finish_reason == PROMPT_TOO_LONG for samples in outputs for s in samples] == [
        False, False, True, True, False, False
    ]
    dropped = outputs[1][0]
    assert dropped.completion_ids == [] and dropped.text == "" and len(dropped.prompt_ids) > 40
    assert all(s.completion_ids for s in outputs[0] + outputs[2])


def test_max_prompt_tokens_must_be_positive(make_tiny_agent):
    with pytest.raises(ValueError, match="max_prompt_tokens must be >= 1"):
        make_tiny_agent(max_prompt_tokens=0)


def test_export_in_several_files_loads_with_from_pretrained(make_tiny_agent, tmp_path):
    from transformers import AutoModelForCausalLM

    from absolutezero.distributed import Group
    from absolutezero_policy.train_state import INDEX_FILE, export_pretrained

    agent = make_tiny_agent()
    export_pretrained(tmp_path, agent.model, Group(), max_shard_bytes=20_000)
    assert (tmp_path / INDEX_FILE).is_file() and len(list(tmp_path.glob("model-*.safetensors"))) > 2
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    own = dict(agent.model.named_parameters())
    for name, parameter in loaded.named_parameters():
        assert torch.equal(parameter, own[name]), name
