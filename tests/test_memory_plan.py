"""The memory planner: ``absolutezero_policy.memory_plan`` and ``python -m absolutezero.plan``.

The activation formulas are checked against autograd itself: the bytes of the tensors a
tiny random Qwen2 saves for backward (``saved_tensors_hooks``, unique storages,
parameters excluded), per token, in fp32, under bf16 autocast, with bf16 parameters
(FSDP2's mixed precision), with gradient checkpointing and with top-K training of tied
and untied models. The rest is arithmetic checked for its scaling and for the verdicts
on the paper recipes.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from absolutezero.config import ConfigError, load_config
from absolutezero.plan import config_settings, main
from absolutezero.components import agent_kwargs, resolve_options
from absolutezero_policy.memory_plan import (
    GB,
    Architecture,
    MemoryPlan,
    memory_plan,
    plan_memory,
    resolve_architecture,
)

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
RECIPES = {"qwen2.5-coder-3b": 2, "qwen2.5-coder-7b": 4}  # recipe -> GPUs (80 GB each)
TINY = dict(vocab_size=512, hidden_size=64, intermediate_size=176, num_hidden_layers=3,
            num_attention_heads=4, num_key_value_heads=2)


@pytest.fixture(autouse=True)
def no_autoload(monkeypatch):
    monkeypatch.setenv("ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD", "1")


def recipe_options(name: str, *overrides: str) -> dict:
    return agent_kwargs(resolve_options(load_config([f"config={CONFIGS / name}.yaml", *overrides])))


# -- the formulas against autograd ------------------------------------------------------------


def _tiny_qwen2(tied: bool):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**TINY, tie_word_embeddings=tied, attn_implementation="sdpa")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(config)
    return model, Architecture.from_config(config.to_dict(), name="tiny", source="test")


def _saved_bytes(model, tokens: int, *, autocast: bool, checkpointing: bool) -> int:
    """Bytes of the unique non-parameter storages autograd saves in one forward pass."""
    import torch
    from torch.utils.checkpoint import checkpoint

    if checkpointing:
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x's name
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    ids = torch.randint(0, TINY["vocab_size"], (1, tokens), generator=torch.Generator().manual_seed(tokens))
    context = torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), context:
        # as the learner scores completions: the decoder, then the head on a chunk of
        # positions under a checkpoint (which keeps the final norm's output as its input)
        hidden = model.model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False).last_hidden_state
        checkpoint(lambda h: model.lm_head(h).float().logsumexp(-1), hidden[:, -8:], use_reentrant=False)
    return sum(seen.values())


@pytest.mark.parametrize(
    "case, tied, trainable_layers, regime",
    [
        ("fp32, all blocks", True, 0, "fp32"),
        ("bf16 autocast over fp32 weights (ddp)", True, 0, "autocast"),
        ("bf16 parameters (fsdp2 mixed precision)", True, 0, "bf16"),
        ("fp32, top block, untied head", False, 1, "fp32"),
        ("fp32, top block, tied head: the gradient crosses the frozen blocks", True, 1, "fp32"),
        ("fp32, gradient checkpointing", True, 0, "fp32-checkpointed"),
    ],
)
def test_activation_formulas_match_autograds_saved_tensors(case, tied, trainable_layers, regime):
    import torch

    from absolutezero_policy.trainable import select_trainable

    model, arch = _tiny_qwen2(tied)
    select_trainable(model, trainable_layers)
    if regime == "bf16":
        model.to(torch.bfloat16)
    checkpointing = regime.endswith("checkpointed")
    autocast = regime == "autocast"
    # per token: the slope between two lengths (constants such as autocast's weight casts cancel)
    measured = (_saved_bytes(model, 256, autocast=autocast, checkpointing=checkpointing)
                - _saved_bytes(model, 128, autocast=autocast, checkpointing=checkpointing)) / 128
    plan = plan_memory(
        arch, gpus=1, device="cpu", tokens_per_micro_batch=1, trainable_layers=trainable_layers,
        strategy="fsdp2" if regime == "bf16" else "ddp", compute_dtype_bytes=4 if regime.startswith("fp32") else 2,
    )
    predicted = plan.details["activations_checkpointed_forward"] if checkpointing else plan.activations_full
    assert predicted == pytest.approx(measured, rel=0.01), case


def test_parameter_counts_match_the_model_and_select_trainable():
    from absolutezero_policy.trainable import select_trainable

    for tied in (True, False):
        model, arch = _tiny_qwen2(tied)
        assert arch.total_parameters == sum(p.numel() for p in model.parameters())
        for layers in (0, 1, 2, 3, 5):
            trainable, total = select_trainable(model, layers)
            assert arch.trainable_parameters(layers) == trainable, (tied, layers)


def test_the_embedded_models_shapes():
    arch = resolve_architecture("embedded")  # its cache folder's config.json, or the built-in fallback
    assert (arch.hidden_size, arch.num_layers, arch.vocab_size) == (896, 24, 151936)
    assert arch.total_parameters == 630_167_424  # the GGUF-derived copy has an untied head
    seven = resolve_architecture("Qwen/Qwen2.5-Coder-7B-Instruct")
    assert round(seven.total_parameters / 1e9, 2) == 7.62 and not seven.tie_word_embeddings
    assert round(resolve_architecture("Qwen/Qwen2.5-Coder-3B").total_parameters / 1e9, 2) == 3.09


# -- scaling ----------------------------------------------------------------------------------


def test_fsdp2_divides_the_training_state_by_the_ranks():
    arch = resolve_architecture("Qwen/Qwen2.5-Coder-7B")
    one, four = (plan_memory(arch, strategy="fsdp2", gpus=n, tokens_per_micro_batch=8192) for n in (1, 4))
    for part in ("weights", "gradients", "optimizer"):
        assert getattr(four, part) == pytest.approx(getattr(one, part) / 4, abs=4)
    assert four.activations_full == one.activations_full  # activations are per rank, not sharded
    ddp = plan_memory(arch, strategy="ddp", gpus=4, tokens_per_micro_batch=8192)
    assert ddp.weights == one.weights and ddp.optimizer == 8 * arch.total_parameters
    offloaded = plan_memory(arch, strategy="fsdp2", gpus=4, cpu_offload=True, tokens_per_micro_batch=8192)
    assert offloaded.total < four.total and offloaded.host_memory >= four.training_state


def test_checkpointing_and_fewer_tokens_shrink_activations():
    arch = resolve_architecture("Qwen/Qwen2.5-Coder-7B")
    full = plan_memory(arch, tokens_per_micro_batch=14240)
    checkpointed = plan_memory(arch, tokens_per_micro_batch=14240, gradient_checkpointing=True)
    assert checkpointed.activations_checkpointed < full.activations_full / 5
    assert checkpointed.total < full.total
    assert full.activations_full == checkpointed.activations_full  # both variants are always reported
    half = plan_memory(arch, tokens_per_micro_batch=7120)
    assert half.activations_full == pytest.approx(full.activations_full / 2, rel=0.01)


def test_top_k_training_keeps_fewer_activations_unless_the_head_is_tied():
    untied = resolve_architecture("Qwen/Qwen2.5-Coder-7B")
    tied = resolve_architecture("Qwen/Qwen2.5-Coder-3B")
    for arch, expected_blocks in ((untied, 4), (tied, tied.num_layers)):
        plan = plan_memory(arch, trainable_layers=4, tokens_per_micro_batch=4096)
        assert plan.details["blocks_keeping_activations"] == expected_blocks
    assert any("tied" in w for w in plan_memory(tied, trainable_layers=4).warnings)


# -- the paper recipes ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_the_paper_recipes_fit_their_hardware(name):
    plan = memory_plan(recipe_options(name), RECIPES[name], 80)
    assert plan.fits, plan.report()
    assert plan.total <= 80 * GB and plan.gradient_checkpointing
    assert plan.settings["strategy"] == "fsdp2" and plan.vllm_kv_cache > 0


def test_the_7b_recipe_does_not_fit_with_ddp_and_the_suggestions_make_it_fit():
    options = recipe_options("qwen2.5-coder-7b", "agent_options.strategy=ddp", "agent_options.gradient_checkpointing=false")
    plan = memory_plan(options, 4, 80)
    assert not plan.fits and plan.training_state > 80 * GB  # the replicated state alone
    assert plan.suggestions.get("strategy") == "fsdp2"
    fixed = load_config([f"config={CONFIGS}/qwen2.5-coder-7b.yaml", "agent_options.strategy=ddp",
                         "agent_options.gradient_checkpointing=false", *config_settings(plan.suggestions)])
    assert memory_plan(agent_kwargs(resolve_options(fixed)), 4, 80).fits
    assert plan.suggested_plan is not None and plan.suggested_plan.fits


@pytest.mark.parametrize(
    "overrides, gpus, memory, expected",
    [
        (["agent_options.vllm_options.gpu_memory_utilization=0.9"], 4, 80, "vllm_options.gpu_memory_utilization"),
        (["agent_options.max_tokens_per_micro_batch=200000"], 4, 80, "max_tokens_per_micro_batch"),
        ([], 1, 80, None),  # one GPU: offload or more GPUs
    ],
)
def test_suggestions_make_non_fitting_settings_fit(overrides, gpus, memory, expected):
    options = recipe_options("qwen2.5-coder-7b", *overrides)
    plan = memory_plan(options, gpus, memory)
    assert not plan.fits
    assert plan.suggestions and plan.suggested_plan is not None and plan.suggested_plan.fits
    if expected:
        assert expected in plan.suggestions
    settings = config_settings({k: v for k, v in plan.suggestions.items() if k != "gpus"})
    config = load_config([f"config={CONFIGS}/qwen2.5-coder-7b.yaml", *overrides, *settings])
    assert memory_plan(agent_kwargs(resolve_options(config)), plan.suggestions.get("gpus", gpus), memory).fits


def test_a_kv_cache_too_small_for_one_sequence_does_not_fit():
    plan = memory_plan(recipe_options("qwen2.5-coder-7b", "agent_options.vllm_options.gpu_memory_utilization=0.2"), 4, 80)
    assert not plan.fits and any("cannot hold one" in w for w in plan.warnings)


# -- the command line -------------------------------------------------------------------------


def test_policy_agent_exposes_the_planner():
    """The core reaches the formulas only through the registered agent class."""
    from absolutezero.registry import load_agent_class

    via_registry = load_agent_class("policy").memory_plan(recipe_options("qwen2.5-coder-7b"), 4, 80)
    direct = memory_plan(recipe_options("qwen2.5-coder-7b"), 4, 80)
    assert isinstance(via_registry, MemoryPlan) and via_registry.total == direct.total


def test_cli_prints_every_part_and_the_verdict():
    out = io.StringIO()
    assert main([f"config={CONFIGS}/qwen2.5-coder-7b.yaml", "gpus=4", "gpu_memory_gb=80"], out=out) == 0
    text = out.getvalue()
    for part in ("weights (fp32 master, 1/4)", "gradients", "optimiser (AdamW", "transient",
                 "activations, checkpointing [counted]", "activations, no checkpointing",
                 "logits", "vLLM weights (bf16)", "vLLM KV cache", "generation phase", "update phase"):
        assert part in text, part
    assert "\nfits (peak" in text

    out = io.StringIO()
    assert main([f"config={CONFIGS}/qwen2.5-coder-7b.yaml", "gpus=4", "agent_options.strategy=ddp"], out=out) == 0
    assert "does not fit" in out.getvalue() and "to fit, set: agent_options.strategy=fsdp2" in out.getvalue()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["gpus=0"], "gpus must be an integer >= 1"),
        (["gpu_memory_gb=-5"], "gpu_memory_gb must be > 0"),
        (["gpu=4"], "did you mean 'gpus'?"),
        (["agent_options.stratgy=fsdp2"], "has no option 'agent_options.stratgy'; did you mean 'strategy'?"),
        (["agent_options.strategy=zero3"], "bad value 'zero3' for agent_options.strategy: agent 'policy' expects one of 'ddp', 'fsdp2'"),
        (["agent_options.model=acme/unknown-model"], "pass a local model folder with config.json"),
        (["agent_options.devce=cuda"], "did you mean 'device'?"),
    ],
)
def test_cli_mistakes_exit_2_with_a_clear_message(arguments, message, capsys):
    assert main([f"config={CONFIGS}/qwen2.5-coder-7b.yaml", *arguments], out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_local_model_folder_is_read(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2", **TINY, "tie_word_embeddings": True}))
    options = recipe_options("qwen2.5-coder-7b", f"agent_options.model={folder}")
    plan = memory_plan(options, 1, 80)
    assert plan.settings["architecture"].hidden_size == 64 and plan.fits
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 64}))
    with pytest.raises(ConfigError, match="Qwen2/Llama-style decoders only"):
        memory_plan(options, 1, 80)
    (folder / "config.json").unlink()
    with pytest.raises(ConfigError, match="has no config.json"):
        memory_plan(options, 1, 80)


def test_an_agent_without_a_planner_is_a_clear_error(monkeypatch, capsys):
    import absolutezero.registry

    class Planless:
        pass

    monkeypatch.setattr(absolutezero.registry, "load_agent_class", lambda name: Planless)
    assert main([f"config={CONFIGS}/qwen2.5-coder-7b.yaml"], out=io.StringIO()) == 2
    assert "has no memory planner" in capsys.readouterr().err


def test_cli_exit_2_from_a_real_process():
    done = subprocess.run([sys.executable, "-m", "absolutezero.plan", "gpus=0"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "gpus must be an integer >= 1" in done.stderr, done.stderr
    done = subprocess.run([sys.executable, "-m", "absolutezero.plan", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "gpu_memory_gb" in done.stdout


def test_plan_is_a_memory_plan_with_separate_parts():
    plan = plan_memory(resolve_architecture("embedded"), gpus=2, strategy="fsdp2", device="cpu",
                       compute_dtype_bytes=4, tokens_per_micro_batch=4096, trainable_layers=4)
    assert isinstance(plan, MemoryPlan) and plan.overhead == 0
    for part in ("weights", "gradients", "optimizer", "activations_checkpointed", "activations_full", "logits",
                 "vllm_weights", "vllm_kv_cache", "total"):
        assert isinstance(getattr(plan, part), int), part
    assert plan.total == max(plan.generation_phase, plan.update_phase)
