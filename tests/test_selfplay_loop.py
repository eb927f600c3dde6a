"""The self-play step and loop (absolutezero.selfplay).

Most tests drive the real trainer with the real ``arith`` environment and a small
scripted agent (defined here, a complete Agent implementation with its own seeded
generator) so that the trainer's bookkeeping can be checked exactly; the end-to-end tests
use the real ``policy`` agent with the tiny random Llama on ``arith`` and ``code``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from absolutezero import hookimpl
from absolutezero.config import ConfigError, SelfPlayConfig, load_config
from absolutezero.plugins import get_plugin_manager
from absolutezero.protocol import Agent, Prompt, Sample
from absolutezero.registry import make_environment
from absolutezero.selfplay import SelfPlayTrainer

REPO = Path(__file__).resolve().parents[1]

_QUESTION = re.compile(r"\n\n(-?\d+) \+ (-?\d+)\n\n")


class ScriptedAgent(Agent):
    """A deterministic stand-in policy for the arith environment.

    Proposes ``a + b`` expressions (some malformed), answers ``a + b`` questions correctly
    with probability ``p_correct`` and everything else with a random integer. All
    randomness comes from its own seeded generator, which ``save``/``load`` persist.
    Records every call so tests can check how the trainer batches work.
    """

    def __init__(self, seed: int = 0, p_correct: float = 0.5, p_garbage: float = 0.25) -> None:
        self.rng = np.random.default_rng(seed)
        self.p_correct = p_correct
        self.p_garbage = p_garbage
        self.generate_calls: list[tuple[int, int, bool]] = []
        self.updates: list[tuple[int, list[float]]] = []
        self.fail_on_generate: int | None = None  # raise on this generate call (1-based)

    def _text(self, prompt: Prompt) -> str:
        if "task_type" in prompt.context:  # a proposer prompt
            if self.rng.random() < self.p_garbage:
                return "I am not sure what to write."
            a, b = self.rng.integers(0, 30, size=2)
            return f"<answer>{a} + {b}</answer>"
        match = _QUESTION.search(prompt.messages[-1]["content"])
        if match and self.rng.random() < self.p_correct:
            return f"<answer>{int(match.group(1)) + int(match.group(2))}</answer>"
        return f"<answer>{int(self.rng.integers(-5, 60))}</answer>"

    def generate(self, prompts: Sequence[Prompt], num_samples: int = 1, greedy: bool = False) -> list[list[Sample]]:
        self.generate_calls.append((len(prompts), num_samples, greedy))
        if self.fail_on_generate == len(self.generate_calls):
            raise KeyboardInterrupt
        out = []
        for prompt in prompts:
            samples = []
            for _ in range(num_samples):
                text = self._text(prompt)
                ids = [ord(c) for c in text]
                samples.append(Sample([1, 2, 3], ids, [-0.5] * len(ids), text, "stop"))
            out.append(samples)
        return out

    def update(self, samples: Sequence[Sample], advantages: Sequence[float]) -> dict[str, float]:
        assert len(samples) == len(advantages)
        self.updates.append((len(samples), [float(a) for a in advantages]))
        return {"loss": float(np.mean(np.square(advantages))), "updates": float(len(self.updates))}

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def save(self, directory: str) -> None:
        state = {"rng": self.rng.bit_generator.state, "updates": len(self.updates)}
        Path(directory, "scripted.json").write_text(json.dumps(state))

    def load(self, directory: str) -> None:
        state = json.loads(Path(directory, "scripted.json").read_text())
        self.rng.bit_generator.state = state["rng"]
        self.updates = [(0, [])] * state["updates"]


def make_trainer(seed: int = 0, agent_seed: int = 0, pm=None, **settings) -> SelfPlayTrainer:
    env = make_environment("arith")
    defaults = dict(propose_batch=4, solve_batch=3, learnability_samples=2, references=2, seed_size=1, seed_max_rounds=1,
                    seed_batch=4)
    defaults.update(settings)
    return SelfPlayTrainer(env, ScriptedAgent(agent_seed), SelfPlayConfig(**defaults), seed=seed, plugin_manager=pm)


def without_timings(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if not k.startswith("time/")}


def test_one_step_batches_generation_and_trains_once():
    trainer = make_trainer()
    agent = trainer.agent
    seeding = trainer.seed()
    assert seeding.step == 0 and trainer.seeded
    # identity-style seeds plus one round of 2x4 validated proposals, no training
    assert agent.updates == [] and agent.generate_calls == [(8, 1, False)]
    sizes_before = trainer.buffers.sizes()
    assert all(size >= 1 for size in sizes_before.values())

    result = trainer.step()
    assert result.step == 1 and trainer.step_count == 1 and not result.interrupted
    propose_call, solve_call = agent.generate_calls[1:]
    assert propose_call == (8, 1, False)  # all task types' proposals in one call
    valid = sum(round(result.metrics[f"propose/{t}/valid_rate"] * 4) for t in trainer.task_types)
    # learnability rollouts (n=2 per valid proposal) and the solve batch in ONE sampled call
    assert solve_call == (2 * valid + 2 * 3, 1, False)
    assert len(agent.updates) == 1
    n_samples, advantages = agent.updates[0]
    assert n_samples == 8 + 6  # proposals + solve batch; learnability rollouts are not trained
    assert result.metrics["learnability/rollouts"] == 2 * valid
    assert result.metrics["train/loss"] == pytest.approx(np.mean(np.square(advantages)))
    for task_type in trainer.task_types:
        assert result.metrics[f"buffer/{task_type}/size"] == trainer.buffers.sizes()[task_type]
        assert trainer.buffers.sizes()[task_type] >= sizes_before[task_type]


def test_advantages_are_normalised_per_role_and_task_type():
    trainer = make_trainer(propose_batch=6, solve_batch=5)
    result = trainer.step()
    _, advantages = trainer.agent.updates[0]
    layout = [("propose", t, 6) for t in trainer.task_types] + [("solve", t, 5) for t in trainer.task_types]
    start = 0
    for role, task_type, count in layout:
        group = np.asarray(advantages[start : start + count])
        start += count
        assert abs(group.mean()) < 1e-6, (role, task_type)
        if not result.metrics[f"{role}/{task_type}/degenerate"]:
            assert group.std() == pytest.approx(1.0, abs=1e-4)
        assert result.metrics[f"{role}/{task_type}/advantage_mean"] == pytest.approx(group.mean(), abs=1e-9)


def test_metrics_have_the_documented_keys():
    trainer = make_trainer()
    metrics = trainer.step().metrics
    for t in trainer.task_types:
        for name in ("reward_mean", "reward_std", "count", "valid_rate", "format_ok_rate", "new_rate",
                     "advantage_mean", "advantage_std", "completion_len_mean", "truncated_rate"):
            assert f"propose/{t}/{name}" in metrics
        for name in ("reward_mean", "solve_rate", "format_ok_rate", "advantage_mean", "advantage_std",
                     "completion_len_mean"):
            assert f"solve/{t}/{name}" in metrics
        assert f"buffer/{t}/size" in metrics
    for name in ("generation", "validation", "verification", "update", "step"):
        assert metrics[f"time/{name}"] >= 0.0
    assert metrics["tokens/generated"] > 0 and metrics["tokens/trained"] > metrics["tokens/generated"] / 10
    assert 0.0 <= metrics["overall/valid_rate"] <= 1.0


def test_the_same_seeds_give_the_same_run_and_other_seeds_differ():
    def run(seed):
        trainer = make_trainer(seed=seed, agent_seed=seed)
        metrics = [without_timings(r.metrics) for r in trainer.iterate(3)]
        return metrics, trainer.buffers.to_jsonl()

    (metrics, buffers), again, (other_metrics, other_buffers) = run(5), run(5), run(6)
    assert (metrics, buffers) == again
    assert len(metrics) == 4  # step 0 (seeding) + 3 steps
    assert buffers != other_buffers and metrics != other_metrics


def test_an_interrupted_step_leaves_the_trainer_as_before():
    trainer = make_trainer()
    trainer.step()
    buffers, rng_state = trainer.buffers.to_jsonl(), trainer.rng.bit_generator.state
    trainer.agent.fail_on_generate = len(trainer.agent.generate_calls) + 2  # the solve call
    with pytest.raises(KeyboardInterrupt):
        trainer.step()
    assert trainer.step_count == 1
    assert trainer.buffers.to_jsonl() == buffers  # the step's new tasks were rolled back
    assert trainer.rng.bit_generator.state == rng_state
    assert len(trainer.agent.updates) == 1


class _Recorder:
    def __init__(self):
        self.accepted, self.rejected = [], []

    @hookimpl
    def absolutezero_task_accepted(self, task, step):
        self.accepted.append((task.task_type, step))

    @hookimpl
    def absolutezero_task_rejected(self, task_type, response, reason, step):
        self.rejected.append((task_type, reason, step))


class _RejectAll:
    @hookimpl
    def absolutezero_filter_proposal(self, task, response):
        return "no new tasks today"

    @hookimpl
    def absolutezero_filter_answer(self, task, response):
        return "answers are not trusted"

    @hookimpl
    def absolutezero_reward_terms(self, role, task, response, reward):
        return 0.25 if role == "solve" else None


def _manager(*plugins):
    os.environ["ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    pm = get_plugin_manager()
    for plugin in plugins:
        pm.register(plugin)
    return pm


def test_accept_and_reject_hooks_see_every_proposal_with_its_step():
    recorder = _Recorder()
    trainer = make_trainer(pm=_manager(recorder))
    trainer.seed()
    trainer.step()
    events = [step for _, step in recorder.accepted] + [step for _, _, step in recorder.rejected]
    assert sorted(events) == [0] * 8 + [1] * 8  # seeding round (step 0) + step 1, 2 types x 4
    assert recorder.accepted and recorder.rejected  # the scripted agent writes both kinds
    assert all(reason for _, reason, _ in recorder.rejected)


def test_filter_plugins_reject_proposals_zero_answers_and_reward_terms_add(monkeypatch):
    recorder = _Recorder()
    trainer = make_trainer(pm=_manager(_RejectAll(), recorder))
    trainer.seed()
    seeds_only = trainer.buffers.sizes()
    result = trainer.step()
    assert trainer.buffers.sizes() == seeds_only  # nothing got past the proposal filter
    assert recorder.accepted == []
    plugin_reasons = [r for _, r, step in recorder.rejected if r == "rejected by plugin: no new tasks today"]
    assert plugin_reasons  # well-formed proposals were rejected by the plugin, not the env
    for t in trainer.task_types:
        assert result.metrics[f"propose/{t}/valid_rate"] == 0.0
        assert result.metrics[f"propose/{t}/reward_mean"] == -1.0  # paper format penalty
        # filtered answers score as format failures (-1) and the plugin term adds 0.25
        assert result.metrics[f"solve/{t}/solve_rate"] == 0.0
        assert result.metrics[f"solve/{t}/format_ok_rate"] == 0.0
        assert result.metrics[f"solve/{t}/reward_mean"] == pytest.approx(-0.75)


def test_unknown_task_type_is_a_config_error_with_suggestion():
    env = make_environment("arith")
    with pytest.raises(ConfigError, match="did you mean 'evaluate'"):
        SelfPlayTrainer(env, ScriptedAgent(), SelfPlayConfig(task_types=["evaluat"]))


def test_task_types_subset_and_from_config():
    config = load_config(["selfplay.task_types=[complete]", "seed=3", "rewards.variant=original"])
    trainer = SelfPlayTrainer.from_config(make_environment("arith"), ScriptedAgent(), config)
    assert trainer.task_types == ("complete",)
    assert trainer.rewards.wrong_answer == -0.5
    result = trainer.step()
    assert not any(key.startswith("propose/evaluate") for key in result.metrics)


# -- the real policy agent -------------------------------------------------------------

def _policy_agent(model_dir, seed=0, max_new_tokens=12):
    pytest.importorskip("absolutezero_policy.agent")
    from absolutezero.registry import make_agent
    from absolutezero.components import agent_kwargs, resolve_options

    config = load_config(["env=arith", f"agent_options.model={model_dir}", f"seed={seed}", f"agent_options.max_new_tokens={max_new_tokens}",
                          "agent_options.autocast_bf16=false"])
    return make_agent("policy", agent_kwargs(resolve_options(config)))


@pytest.mark.parametrize("env_name", ["arith", "code"])
def test_end_to_end_with_the_tiny_policy_model(tiny_model_dir, env_name):
    env = make_environment(env_name)
    agent = _policy_agent(tiny_model_dir)
    try:
        settings = SelfPlayConfig(propose_batch=2, solve_batch=2, seed_size=1, seed_max_rounds=1)
        trainer = SelfPlayTrainer(env, agent, settings, seed=0)
        results = list(trainer.iterate(2))
        assert [r.step for r in results] == [0, 1, 2]
        for result in results[1:]:
            assert result.metrics["tokens/generated"] > 0
            assert any(k.startswith("train/") for k in result.metrics)
            for t in trainer.task_types:
                assert f"propose/{t}/valid_rate" in result.metrics
    finally:
        env.close()
        agent.close()


def test_benchmark_data_is_never_opened_during_a_run(tiny_model_dir, tmp_path):
    """Structural check of 'benchmarks are never training data' (audit hook, subprocess)."""
    pytest.importorskip("absolutezero_policy.agent")
    script = textwrap.dedent(
        """
        import sys
        opened = []
        def hook(event, args):
            if event == "open" and args and isinstance(args[0], (str, bytes)):
                opened.append(str(args[0]))
            elif event == "import" and args:
                opened.append("import:" + str(args[0]))
        sys.addaudithook(hook)
        from absolutezero.run import main
        code = main(sys.argv[1:])
        with open(sys.argv[1].split("=", 1)[1] + "/opened.txt", "w") as handle:
            handle.write("\\n".join(opened))
        sys.exit(code)
        """
    )
    out = tmp_path / "runs"
    args = [f"out={out}", f"agent_options.model={tiny_model_dir}", "env=arith", "steps=1", "name=audit", "progress=false",
            "agent_options.max_new_tokens=8", "selfplay.propose_batch=2", "selfplay.solve_batch=2",
            "agent_options.autocast_bf16=false"]
    # out= first: the script writes its log next to the run folders
    env = dict(os.environ, ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD="1")
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    opened = (out / "opened.txt").read_text().splitlines()
    assert any("metrics.jsonl" in path for path in opened)  # the hook did see the run's files
    crux = str((REPO.parent / "shared" / "data" / "cruxeval").resolve())
    offenders = [p for p in opened if "cruxeval" in p.lower() or "absolutezero_benchmarks" in p or p.startswith(crux)]
    assert offenders == []
