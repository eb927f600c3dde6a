"""Gymnasium adapter: episodes, rewards identical to rewards.py, errors, determinism."""

from __future__ import annotations

import gymnasium
import pytest

import absolutezero  # noqa: F401  (registers the Gymnasium ids)
from absolutezero import plugins
from absolutezero.gym_adapter import AbsoluteZeroEnv, render_prompt
from absolutezero.protocol import Prompt
from absolutezero.rewards import RewardScheme, propose_reward, solve_reward
from absolutezero_arith import ArithEnvironment

PROPOSAL = "<answer>3 * (4 + 5)</answer>"
RIGHT, WRONG, GARBLED = "<answer>27</answer>", "<answer>26</answer>", "twenty-seven"


def make(**options) -> AbsoluteZeroEnv:
    return AbsoluteZeroEnv("arith", seed=0, **options)


@pytest.mark.parametrize("variant", ["paper", "original"])
@pytest.mark.parametrize(
    "answers", [(RIGHT, RIGHT), (RIGHT, WRONG), (WRONG, GARBLED), (RIGHT, WRONG, WRONG)]
)
def test_propose_reward_equals_rewards_module(variant, answers):
    adapter = make(reward_variant=variant, learnability_samples=len(answers))
    obs, info = adapter.reset(options={"role": "propose", "task_type": "evaluate"})
    prompt = info["prompt"]
    assert obs == render_prompt(prompt)
    _, reward, terminated, _, info = adapter.step(PROPOSAL)
    assert (reward, terminated, info["valid"]) == (0.0, False, True)
    for answer in answers:
        _, reward, terminated, _, step_info = adapter.step(answer)
    assert terminated

    env, scheme = ArithEnvironment(), RewardScheme.from_config(variant)
    validation = env.validate([prompt], [PROPOSAL])[0]
    solver_prompt = env.solver_prompt(validation.task)
    verdicts = env.verify([validation.task] * len(answers), [solver_prompt] * len(answers), list(answers))
    assert reward == propose_reward(validation, verdicts, scheme)
    assert step_info["success_rate"] == sum(v.correct for v in verdicts) / len(verdicts)


@pytest.mark.parametrize("variant", ["paper", "original"])
@pytest.mark.parametrize("answer", ["<answer>2</answer>", "<answer>3</answer>", "no idea"])
def test_solve_reward_equals_rewards_module(variant, answer):
    adapter = make(reward_variant=variant)
    _, info = adapter.reset(options={"role": "solve", "task_type": "evaluate"})
    task = adapter.unwrapped._state["task"]
    _, reward, terminated, truncated, step_info = adapter.step(answer)
    env = ArithEnvironment()
    verdict = env.verify([task], [info["prompt"]], [answer])[0]
    assert (terminated, truncated) == (True, False)
    assert reward == solve_reward(verdict, RewardScheme.from_config(variant))
    assert step_info["correct"] == verdict.correct and step_info["reason"] == verdict.reason


def test_invalid_proposal_terminates_with_format_penalty():
    adapter = make(format_penalty=-2.0)
    adapter.reset(options={"role": "propose", "task_type": "complete"})
    _, reward, terminated, _, info = adapter.step("<answer>2 ** 10</answer>")
    assert terminated and reward == -2.0
    assert info["valid"] is False and "Pow" in info["reason"] and info["format_ok"] is True
    assert info["role"] == "propose" and info["task_type"] == "complete"


def test_validated_tasks_join_the_buffers_and_get_solved():
    adapter = make(recency_weight=1.0)
    adapter.reset(options={"role": "propose", "task_type": "evaluate"})
    adapter.step("<answer>6 * 7</answer>")
    assert adapter.buffers.sizes()["evaluate"] == 2
    # recency_weight=1 draws from the newest quarter only: the proposed task
    for _ in range(5):
        obs, _ = adapter.reset(options={"role": "solve", "task_type": "evaluate"})
        assert "6 * 7" in obs
    assert adapter.step("<answer>42</answer>")[1] == 1.0


def test_stepping_rules():
    adapter = make()
    with pytest.raises(RuntimeError, match="before reset"):
        adapter.step("x")
    adapter.reset(options={"role": "solve", "task_type": "evaluate"})
    with pytest.raises(ValueError, match="must be a str"):
        adapter.step(42)
    adapter.step("<answer>2</answer>")
    with pytest.raises(RuntimeError, match="episode is over"):
        adapter.step("<answer>2</answer>")


def test_bad_reset_options():
    adapter = make()
    with pytest.raises(ValueError, match="role must be 'propose' or 'solve'.*did you mean 'solve'"):
        adapter.reset(options={"role": "solver"})
    with pytest.raises(ValueError, match="unknown task type 'evaluat'; did you mean 'evaluate'"):
        adapter.reset(options={"task_type": "evaluat"})
    with pytest.raises(ValueError, match="unknown reset option 'rol'; did you mean 'role'"):
        adapter.reset(options={"rol": "solve"})


def test_constructor_checks():
    with pytest.raises(ValueError, match="learnability_samples must be an integer >= 2"):
        make(learnability_samples=1)
    with pytest.raises(ValueError, match="unknown reward variant 'papr'"):
        make(reward_variant="papr")
    with pytest.raises(ValueError, match="env_options only apply"):
        AbsoluteZeroEnv(ArithEnvironment(), env_options={"max_chars": 3})
    with pytest.raises(TypeError, match="registered name or an Environment"):
        AbsoluteZeroEnv(3)


def test_same_seed_same_episodes():
    def run(seed: int) -> list[str]:
        adapter = AbsoluteZeroEnv("arith", seed=seed, references=2)
        adapter.reset(options={"role": "propose", "task_type": "evaluate"})
        adapter.step("<answer>6 * 7</answer>")
        adapter.step(RIGHT)
        adapter.step(WRONG)
        return [adapter.reset()[0] for _ in range(6)]

    assert run(5) == run(5)
    first = AbsoluteZeroEnv("arith")
    assert first.reset(seed=3)[0] == first.reset(seed=3)[0]


def test_prefill_is_prepended_to_the_action():
    class Prefilled(ArithEnvironment):
        def proposer_prompt(self, task_type, references, rng):
            prompt = super().proposer_prompt(task_type, references, rng)
            return Prompt(prompt.messages, prefill="<answer>", context=prompt.context)

    adapter = AbsoluteZeroEnv(Prefilled(), seed=0)
    obs, _ = adapter.reset(options={"role": "propose", "task_type": "evaluate"})
    assert obs.endswith("### assistant\n<answer>")
    _, _, terminated, _, info = adapter.step("2 + 3</answer>")
    assert info["valid"] and not terminated and info["task"].payload["value"] == 5


def test_plugins_filter_like_the_trainer(monkeypatch):
    monkeypatch.delenv(plugins.AUTOLOAD_ENV_VAR, raising=False)
    pm = plugins.get_plugin_manager()  # autoloads the safety monitor
    adapter = make(plugin_manager=pm)
    adapter.reset(options={"role": "propose", "task_type": "evaluate"})
    _, reward, terminated, _, info = adapter.step("import os\n<answer>1 + 2</answer>")
    assert terminated and reward == -1.0 and "safety monitor" in info["reason"]
    adapter.reset(options={"role": "solve", "task_type": "evaluate"})
    _, reward, _, _, info = adapter.step("<answer>2</answer> eval(x)")
    assert reward == -1.0 and info["format_ok"] is False


def test_gymnasium_make_and_spaces():
    env = gymnasium.make("absolutezero/Arith-v0", seed=1, render_mode="ansi")
    obs, info = env.reset(options={"role": "propose", "task_type": "evaluate"})
    assert env.observation_space.contains(obs) and env.render() == obs
    assert env.action_space.contains("ünïcødé ✓ text") and not env.action_space.contains(b"bytes")
    assert isinstance(env.action_space.sample(), str)
    small = AbsoluteZeroEnv("arith", max_text_length=2000)
    small.reset()
    with pytest.raises(ValueError, match="at most 2000 characters, got str of length 2001"):
        small.step("x" * 2001)
    env.close()


def test_long_prompt_is_reported():
    adapter = AbsoluteZeroEnv("arith", max_text_length=50)
    with pytest.raises(RuntimeError, match="above max_text_length=50"):
        adapter.reset()


def test_gym_env_checker_passes():
    from gymnasium.utils.env_checker import check_env

    check_env(AbsoluteZeroEnv("arith", seed=0), skip_render_check=True)
