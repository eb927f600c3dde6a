"""TRR++ learner and agent checkpoints on the tiny model."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from absolutezero.protocol import Prompt, Sample
from absolutezero_policy.learner import Learner

PROMPTS = [
    Prompt(messages=({"role": "user", "content": "Propose a task."},), prefill="<think>"),
    Prompt(messages=({"role": "user", "content": "Solve this longer task, please, step by step."},)),
]


def sampled(agent, num_samples=2):
    return [s for group in agent.generate(PROMPTS, num_samples=num_samples) for s in group]


def total_logprob(agent, sample: Sample) -> float:
    with torch.no_grad():
        return float(agent.learner.completion_logprobs([sample])[0].sum())


def parameters(agent) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in agent.model.named_parameters()}


def same_parameters(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("clip_ratio", [0.2, None])
def test_update_moves_policy_toward_positive_advantage(make_tiny_agent, clip_ratio):
    agent = make_tiny_agent(clip_ratio=clip_ratio, learning_rate=1e-3)
    good, bad = agent.generate(PROMPTS[:1], num_samples=2)[0]
    assert good.completion_ids != bad.completion_ids
    before = total_logprob(agent, good), total_logprob(agent, bad)
    for _ in range(3):
        fresh = agent.generate(PROMPTS[:1], num_samples=1)  # keeps the generation copy in use
        assert fresh
        metrics = agent.update([good, bad], [1.0, -1.0])
        good = dataclasses.replace(good, logprobs=agent.learner.completion_logprobs([good])[0].tolist())
        bad = dataclasses.replace(bad, logprobs=agent.learner.completion_logprobs([bad])[0].tolist())
    after = total_logprob(agent, good), total_logprob(agent, bad)
    assert after[0] > before[0] + 0.1
    assert after[1] < before[1] - 0.1
    assert metrics["trained_samples"] == 2 and metrics["tokens"] > 0


def test_generation_copy_follows_the_trained_weights(make_tiny_agent):
    agent = make_tiny_agent(dtype="bfloat16", learning_rate=1e-2)
    samples = sampled(agent)
    agent.update(samples, [1.0, -1.0, 0.5, -0.5])
    for name, generation_parameter in agent.backend.model.named_parameters():
        trained = dict(agent.model.named_parameters())[name]
        assert torch.equal(generation_parameter, trained.detach().to(torch.bfloat16))


def gradient(learner) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in learner.parameters])


def test_micro_batching_gives_the_full_batch_gradient(make_tiny_agent):
    agent = make_tiny_agent()
    samples = sampled(agent, num_samples=3)
    advantages = [1.0, -0.5, 0.25, -1.0, 0.75, -0.5]
    gradients = []
    for micro_batch in (1, 4, 6):
        learner = Learner(
            agent.model,
            pad_token_id=agent.tokenizer.pad_token_id,
            learning_rate=1e-3,
            weight_decay=0.0,
            grad_clip=1.0,
            clip_ratio=0.2,
            micro_batch=micro_batch,
            autocast_bf16=False,
        )
        learner.accumulate_gradients(samples, advantages)
        gradients.append(gradient(learner))
    assert gradients[0].abs().max() > 0
    assert torch.allclose(gradients[0], gradients[1], atol=1e-6, rtol=1e-4)
    assert torch.allclose(gradients[0], gradients[2], atol=1e-6, rtol=1e-4)


def test_zero_advantages_are_skipped_without_changing_the_gradient(make_tiny_agent):
    agent = make_tiny_agent()
    samples = sampled(agent, num_samples=2)
    learner = agent.learner
    stats = learner.accumulate_gradients(samples, [1.0, 0.0, 0.0, -1.0])
    assert stats["trained_samples"] == 2
    with_zeros = gradient(learner)
    # the same two samples alone, rescaled to the same token denominator
    kept = [samples[0], samples[3]]
    ratio = sum(len(s.completion_ids) for s in kept) / sum(len(s.completion_ids) for s in samples)
    learner.accumulate_gradients(kept, [1.0, -1.0])
    alone = gradient(learner)
    assert torch.allclose(with_zeros, alone * ratio, atol=1e-7, rtol=1e-4)


def test_all_zero_advantages_leave_the_model_unchanged(make_tiny_agent):
    agent = make_tiny_agent()
    samples = sampled(agent)
    before = parameters(agent)
    metrics = agent.update(samples, [0.0] * len(samples))
    assert metrics["trained_samples"] == 0 and metrics["grad_norm"] == 0.0
    assert same_parameters(before, parameters(agent))


def test_grad_clip_bounds_the_gradient_norm(make_tiny_agent):
    samples = sampled(make_tiny_agent())
    advantages = [2.0, -2.0, 1.0, -1.0]
    clipped = make_tiny_agent(grad_clip=1e-3).update(samples, advantages)
    assert clipped["grad_norm"] > 1e-3
    assert clipped["grad_norm_clipped"] == pytest.approx(1e-3, rel=1e-3)
    free = make_tiny_agent(grad_clip=0).update(samples, advantages)
    assert free["grad_norm_clipped"] == pytest.approx(free["grad_norm"], rel=1e-6)
    assert free["grad_norm"] == pytest.approx(clipped["grad_norm"], rel=1e-4)


def test_clipped_objective_ignores_tokens_outside_the_trust_region(make_tiny_agent):
    sample = sampled(make_tiny_agent())[0]
    # behaviour logprobs 1 nat lower than the current policy: ratio e ~ 2.7 > 1.2
    stale = dataclasses.replace(sample, logprobs=[lp - 1.0 for lp in sample.logprobs])
    ppo = make_tiny_agent(clip_ratio=0.2).update([stale], [1.0])
    assert ppo["clip_fraction"] == pytest.approx(1.0)
    assert ppo["grad_norm"] == 0.0
    assert ppo["ratio_mean"] == pytest.approx(torch.e, rel=1e-3)
    reinforce = make_tiny_agent(clip_ratio=None).update([stale], [1.0])
    assert reinforce["grad_norm"] > 0.0 and reinforce["clip_fraction"] == 0.0
    # a negative advantage is not clipped when the ratio is above 1 + eps
    negative = make_tiny_agent(clip_ratio=0.2).update([stale], [-1.0])
    assert negative["clip_fraction"] == 0.0 and negative["grad_norm"] > 0.0


def test_on_policy_ratio_is_one(make_tiny_agent):
    agent = make_tiny_agent()
    metrics = agent.update(sampled(agent), [1.0, -1.0, 1.0, -1.0])
    assert metrics["ratio_mean"] == pytest.approx(1.0, abs=1e-4)
    assert metrics["approx_kl"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["clip_fraction"] == 0.0


def test_bad_update_input_is_rejected(make_tiny_agent):
    agent = make_tiny_agent()
    samples = sampled(agent)
    with pytest.raises(ValueError, match="one advantage per sample"):
        agent.update(samples, [1.0])
    with pytest.raises(ValueError, match="finite"):
        agent.update(samples, [float("nan")] * len(samples))


@pytest.mark.parametrize(
    "option, message",
    [
        ({"clip_ratio": 1.5}, "clip_ratio must be in"),
        ({"micro_batch": 0}, "micro_batch must be >= 1"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"grad_clip": -1.0}, "grad_clip"),
    ],
)
def test_bad_learner_settings_are_rejected(make_tiny_agent, option, message):
    with pytest.raises(ValueError, match=message):
        make_tiny_agent(**option)


def test_save_load_restores_weights_optimizer_and_generator(make_tiny_agent, tmp_path):
    agent = make_tiny_agent()
    warmup = sampled(agent)
    agent.update(warmup, [1.0, -1.0, 0.5, -0.5])  # optimizer now has moments
    agent.save(str(tmp_path / "ckpt"))
    saved = parameters(agent)

    samples_after_save = sampled(agent)
    agent.update(samples_after_save, [1.0, -1.0, -0.5, 0.5])
    updated = parameters(agent)
    assert not same_parameters(saved, updated)

    agent.load(str(tmp_path / "ckpt"))
    assert same_parameters(saved, parameters(agent))
    again = sampled(agent)
    assert [s.completion_ids for s in again] == [s.completion_ids for s in samples_after_save]
    assert torch.allclose(
        torch.tensor([lp for s in again for lp in s.logprobs]),
        torch.tensor([lp for s in samples_after_save for lp in s.logprobs]),
    )
    agent.update(samples_after_save, [1.0, -1.0, -0.5, 0.5])
    for name, value in parameters(agent).items():
        assert torch.allclose(value, updated[name], atol=1e-7), name


def test_saved_folder_is_a_loadable_model(make_tiny_agent, tmp_path):
    agent = make_tiny_agent()
    agent.update(sampled(agent), [1.0, -1.0, 0.5, -0.5])
    agent.save(str(tmp_path / "ckpt"))
    reopened = make_tiny_agent(model=str(tmp_path / "ckpt"))
    assert same_parameters(parameters(agent), parameters(reopened))


def test_load_rejects_a_folder_that_is_not_a_checkpoint(make_tiny_agent, tmp_path):
    agent = make_tiny_agent()
    with pytest.raises(FileNotFoundError, match="not a saved PolicyAgent"):
        agent.load(str(tmp_path))


def test_fused_adamw_steps_like_the_default_one_and_survives_loading(make_tiny_agent, tmp_path):
    """The CPU learner's fused AdamW (one pass, no temporaries) moves the weights as
    torch's default AdamW does, to rounding; a loaded optimiser state keeps it fused."""
    agent = make_tiny_agent()
    learner = agent.learner
    assert learner.fused_optimizer and learner.optimizer.param_groups[0]["fused"] is True
    samples = sampled(agent)
    start = parameters(agent)
    learner.accumulate_gradients(samples, [1.0, -1.0, 0.5, -0.5])
    grads = {n: p.grad.clone() for n, p in agent.model.named_parameters() if p.grad is not None}
    learner.optimizer.step()
    fused = parameters(agent)
    with torch.no_grad():  # the same step with the default implementation, from the same start
        for name, p in agent.model.named_parameters():
            if name in start:
                p.copy_(start[name])
    plain = torch.optim.AdamW(learner.parameters, lr=learner.optimizer.param_groups[0]["lr"], weight_decay=0.0)
    for name, p in agent.model.named_parameters():
        if name in grads:
            p.grad = grads[name].clone()
    plain.step()
    for name, value in parameters(agent).items():
        assert torch.allclose(value, fused[name], atol=1e-7), name
    assert not same_parameters(start, fused)
    agent.save(str(tmp_path / "ckpt"))
    state = learner.optimizer.state_dict()
    state["param_groups"][0]["fused"] = None  # as written before the fused step existed
    learner.load_state_dict(state)
    assert learner.optimizer.param_groups[0]["fused"] is True
    agent.load(str(tmp_path / "ckpt"))
    assert learner.optimizer.param_groups[0]["fused"] is True
