"""The paper-scale recipes in configs/ and the ``config=<file.yaml>`` CLI argument.

The recipes (Qwen2.5-Coder-3B/7B, vLLM, several GPUs) cannot run on a CPU machine; what
is checked here instead: each file loads and validates through the real CLI parsing, its
batch sizes give the paper's 64 x 6 = 384 samples per update, and one real self-play
step runs with every other setting of the file (references, learnability samples,
induction inputs, learning rate, full fine-tuning, prefill...) on a tiny random model
that replaces the model, backend, device, precision and batch sizes.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from absolutezero.config import ConfigError, load_config
from absolutezero.components import agent_kwargs, resolve_options
from absolutezero.run import main

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
PAPER = {"qwen2.5-coder-3b": "Qwen/Qwen2.5-Coder-3B", "qwen2.5-coder-7b": "Qwen/Qwen2.5-Coder-7B"}
GPUS = {"qwen2.5-coder-3b": 2, "qwen2.5-coder-7b": 4}  # the official code's hardware, 80 GB GPUs
TOKENS_PER_MICRO_BATCH = {"qwen2.5-coder-3b": 28480, "qwen2.5-coder-7b": 16384}
SOURCES = ("[paper]", "[official]", "[project]")


@pytest.fixture(autouse=True)
def no_autoload(monkeypatch):
    monkeypatch.setenv("ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD", "1")


def config_path(name: str) -> Path:
    return CONFIGS / f"{name}.yaml"


# -- config=<file.yaml> -------------------------------------------------------------------


def test_config_file_values_sit_between_defaults_and_command_line(tmp_path):
    file = tmp_path / "run.yaml"
    file.write_text("steps: 7\nseed: 3\nselfplay:\n  propose_batch: 5\nenv_options:\n  prefill: think\n")
    for args in (["steps=2", f"config={file}"], [f"config={file}", "steps=2"]):  # config= first, wherever it is
        config = load_config(args)
        assert (config.steps, config.seed, config.selfplay.propose_batch) == (2, 3, 5)
        assert config.selfplay.solve_batch == 4  # the default, untouched by the file
        assert dict(config.env_options) == {"prefill": "think"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("selfplay:\n  propose_bach: 3\n",
         "unknown config key 'selfplay.propose_bach' in config file {file}; did you mean 'selfplay.propose_batch'?"),
        ("stpes: 3\n", "unknown config key 'stpes' in config file {file}; did you mean 'steps'?"),
        ("steps: ten\n", "bad value 'ten' for 'steps' in config file {file}: expected int"),
        ("steps: [1\n", "is not valid YAML"),
        ("- steps\n", "must hold a mapping of config keys"),
        ("config: other.yaml\n", "a config file cannot include another"),
    ],
)
def test_config_file_mistakes_are_named(tmp_path, text, message):
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config([f"config={file}"])
    assert message.format(file=file) in str(caught.value)


def test_missing_config_file_exits_2_naming_the_path(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    assert main([f"out={tmp_path}", f"config={missing}"]) == 2
    err = capsys.readouterr().err
    assert f"config file '{missing}' does not exist" in err and "Traceback" not in err
    assert main([f"out={tmp_path}", "confg=x.yaml"]) == 2
    assert "did you mean 'config'?" in capsys.readouterr().err


def test_config_file_errors_exit_2_from_a_real_process(tmp_path):
    file = tmp_path / "bad.yaml"
    file.write_text("selfplay:\n  learnability_sampels: 8\n")
    done = subprocess.run([sys.executable, "-m", "absolutezero.run", f"config={file}", f"out={tmp_path}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "did you mean 'selfplay.learnability_samples'?" in done.stderr and "Traceback" not in done.stderr


# -- the paper recipes ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_config_loads_with_the_papers_hyperparameters(name):
    config = load_config([f"config={config_path(name)}"])
    agent = config.agent_options
    assert agent.model == PAPER[name] and agent.backend == "vllm" and config.env == "code"
    sp = config.selfplay
    assert (sp.propose_batch, sp.solve_batch, sp.learnability_samples, sp.references) == (64, 64, 8, 6)
    assert sp.seed_size == 256 and list(sp.task_types) == []
    assert agent.learning_rate == 1e-6 and agent.trainable_layers == 0
    assert agent.grad_clip == 1.0 and agent.weight_decay == 0.0
    assert agent.max_new_tokens == 8096 and agent.max_prompt_tokens == 6144
    # the memory settings the planner names (tests/test_memory_plan.py checks that they fit)
    assert (agent.strategy, agent.gradient_checkpointing, agent.cpu_offload) == ("fsdp2", True, False)
    assert agent.max_tokens_per_micro_batch == TOKENS_PER_MICRO_BATCH[name] and agent.logits_chunk_tokens == 1024
    assert (agent.temperature, agent.top_p) == (1.0, 1.0)
    assert agent.dtype == "bfloat16" and agent.autocast_bf16 is True
    assert config.checkpoint_every == 10 and config.rewards.variant == "paper"
    env = dict(config.env_options)
    assert env["max_shown_references"] == 6 and env["num_induction_inputs"] == 10 and env["prefill"] == "think"
    assert agent.device == "cuda"
    assert dict(agent.vllm_options) == {"gpu_memory_utilization": 0.4, "max_model_len": 14240}
    # every key the file sets reaches the agent constructor unchanged
    options = agent_kwargs(resolve_options(config))
    assert options["max_new_tokens"] == 8096 and options["learning_rate"] == 1e-6
    assert options["max_prompt_tokens"] == 6144 and options["strategy"] == "fsdp2"


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_config_gives_384_samples_per_update(name):
    from absolutezero.registry import make_environment

    config = load_config([f"config={config_path(name)}"])
    env = make_environment(config.env, OmegaConf.to_container(config.env_options))  # the real constructor checks them
    try:
        task_types = list(config.selfplay.task_types) or list(env.task_types)
        assert len(task_types) == 3
        assert env.settings.max_shown_references == 6 and env.settings.num_induction_inputs == 10
        # every proposal and every solve-batch answer is trained on (learnability rollouts are not)
        per_update = len(task_types) * (config.selfplay.propose_batch + config.selfplay.solve_batch)
        assert per_update == 64 * 6 == 384
    finally:
        env.close()


@pytest.mark.parametrize("name", sorted(PAPER))
def test_every_setting_in_a_paper_config_names_its_source(name):
    lines = config_path(name).read_text().splitlines()
    settings = [line for line in lines if re.match(r"^\s*[a-z_]+:\s*\S", line) and not line.lstrip().startswith("#")]
    assert len(settings) > 40
    for line in settings:
        assert any(source in line for source in SOURCES), f"no source comment: {line!r}"
    header = "\n".join(line for line in lines if line.startswith("#"))
    gpus = GPUS[name]
    assert f"torchrun --standalone --nproc_per_node={gpus} -m absolutezero.run config=configs/{name}.yaml" in header
    assert f"python -m absolutezero.plan config=configs/{name}.yaml gpus={gpus} gpu_memory_gb=80" in header
    assert "cannot run on the 2-core CPU machine" in header


# -- a dry run of a recipe on a tiny model -----------------------------------------------

VALID_PROGRAMS = [f"def f(x):\n    return x * {k} + {k}" for k in range(2, 10)]


def _proposal(program: str, input: str) -> str:
    return f"<think>A task.</think>\n<answer>\n```python\n{program}\n```\n```input\n{input}\n```\n</answer>"


def _induction_proposal(inputs: list[str]) -> str:
    blocks = "\n".join(f"```input\n{item}\n```" for item in inputs)
    return f"<think>Inputs.</think>\n<answer>\n{blocks}\n```message\nAn affine map.\n```\n</answer>"


def _seed_buffers(env, path: Path) -> None:
    """Eight valid tasks per buffer (more than K = 6 references), validated by the real env."""
    import numpy as np

    from absolutezero.buffers import BufferSet

    buffers = BufferSet(env.task_types, 16384)
    for task_type in ("deduction", "abduction"):
        prompt = env.proposer_prompt(task_type, [], np.random.default_rng(0))
        responses = [_proposal(program, str(k)) for k, program in enumerate(VALID_PROGRAMS)]
        for validation in env.validate([prompt] * len(responses), responses):
            assert validation.task is not None, validation.reason
            buffers.add(validation.task, 0, seed=True)
    for k, program in enumerate(VALID_PROGRAMS):
        ref = buffers.buffer("deduction").sample_for_solving(1, np.random.default_rng(k), 0.0)
        prompt = env.proposer_prompt("induction", ref, np.random.default_rng(k))
        inputs = [str(i + 10 * k) for i in range(10)]
        validation = env.validate([prompt], [_induction_proposal(inputs)])[0]
        assert validation.task is not None, validation.reason
        payload = validation.task.payload  # 10 inputs, 5 shown to the solver, 5 hidden
        assert len(payload["inputs"]) == 10 and len(payload["visible"]) == 5 and len(payload["hidden"]) == 5
        buffers.add(validation.task, 0, seed=True)
    for task_type in env.task_types:
        assert len(buffers.buffer(task_type)) >= 7, task_type
    buffers.save(path)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["qwen2.5-coder-7b"])
def test_paper_config_dry_run_one_step_on_a_tiny_model(name, tiny_model_dir, make_code_env, tmp_path, monkeypatch, capsys):
    """One real step through ``python -m absolutezero.run``'s main with the recipe.

    Overridden: the model (tiny random Llama), backend (hf), device (cpu), precision
    (float32), batch sizes (2 per role and task type), response length (48 tokens), the
    probe set (off) and seeding (taken from a prepared seed_buffers.jsonl). Kept: K = 6
    references, N = 8 learnability rollouts, 10 induction inputs of which 5 are shown,
    lr 1e-6 on every parameter, clip, correction, the think prefill, the rewards, the
    buffer settings. The tiny model writes gibberish, so one proposal's text is replaced
    by a valid task to make the learnability rollouts run.
    """
    pytest.importorskip("absolutezero_policy.agent")
    from absolutezero_policy.agent import PolicyAgent

    seeds = tmp_path / "seed_buffers.jsonl"
    _seed_buffers(make_code_env(), seeds)

    calls: list[dict] = []
    made: list[PolicyAgent] = []
    real_init, real_generate, real_update = PolicyAgent.__init__, PolicyAgent.generate, PolicyAgent.update

    def init(self, **options):
        real_init(self, **options)
        made.append(self)

    def generate(self, prompts, num_samples=1, greedy=False):
        outputs = real_generate(self, prompts, num_samples=num_samples, greedy=greedy)
        calls.append({"prompts": list(prompts), "greedy": greedy})
        if len(calls) == 1:  # the step's proposals: make the first deduction proposal valid
            first = next(i for i, p in enumerate(prompts) if p.context.get("task_type") == "deduction")
            text = _proposal("def f(s):\n    return s[::-1] + s", "'azr'").removeprefix(prompts[first].prefill)
            outputs[first] = [dataclasses.replace(outputs[first][0], text=text)]
        return outputs

    def update(self, samples, advantages):
        calls.append({"update": len(samples)})
        return real_update(self, samples, advantages)

    monkeypatch.setattr(PolicyAgent, "__init__", init)
    monkeypatch.setattr(PolicyAgent, "generate", generate)
    monkeypatch.setattr(PolicyAgent, "update", update)

    overrides = [
        f"agent_options.model={tiny_model_dir}", "agent_options.backend=hf", "agent_options.device=cpu", "agent_options.vllm_options=null",
        "agent_options.dtype=float32",
        "agent_options.autocast_bf16=false", "selfplay.propose_batch=2", "selfplay.solve_batch=2",
        "agent_options.max_new_tokens=48", "agent_options.batch_size=16", "agent_options.micro_batch=4",
        f"seed_buffers={seeds}", "probe.every=0", "steps=1", "progress=false", "env_options.workers=1",
        f"out={tmp_path / 'runs'}", "name=dry",
    ]
    code = main([*overrides, f"config={config_path(name)}"])  # config= last: still applied first
    captured = capsys.readouterr()
    assert code == 0, captured.err

    # the run's resolved config keeps the recipe's settings
    run_dir = tmp_path / "runs" / "dry"
    saved = OmegaConf.load(run_dir / "config.yaml")
    assert saved.selfplay.learnability_samples == 8 and saved.selfplay.references == 6
    assert saved.agent_options.learning_rate == 1e-6 and saved.agent_options.trainable_layers == 0
    assert saved.env_options.num_induction_inputs == 10 and saved.env_options.prefill == "think"

    (agent,) = made
    assert agent.trainable_parameters == agent.total_parameters  # full fine-tuning
    assert agent.learner.optimizer.param_groups[0]["lr"] == 1e-6

    propose, solve, trained = calls[0], calls[1], calls[2]
    assert len(propose["prompts"]) == 3 * 2 and not propose["greedy"]
    for prompt in propose["prompts"]:
        assert prompt.prefill.startswith("<think>")
        if prompt.context["task_type"] in ("deduction", "abduction"):
            assert len(prompt.context["references"]) == 6  # K = 6 shown
        else:
            assert "Write 10 different inputs" in prompt.messages[-1]["content"]
    # 8 learnability rollouts of the one valid proposal, then the solve batch of 3 x 2
    assert len(solve["prompts"]) == 8 + 3 * 2 and not solve["greedy"]
    assert len({p.messages[-1]["content"] for p in solve["prompts"][:8]}) == 1
    assert trained == {"update": 3 * (2 + 2)}  # with the recipe's 64 + 64: 384

    records = [line for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    assert len(records) == 2  # step 0 (seed buffers taken) and step 1
