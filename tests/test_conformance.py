"""check_env over every registered environment, and that it catches broken ones."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import absolutezero  # noqa: F401
from absolutezero import registry
from absolutezero.conformance import ConformanceError, check_env
from absolutezero.protocol import Prompt, Task, Validation, Verdict
from absolutezero_arith import ArithEnvironment


@pytest.mark.parametrize("name", registry.environment_names())
def test_every_registered_environment_conforms(name):
    package = registry.entries("environment")[name].module.split(".")[0]
    try:
        check_env(name)
    except (registry.EntryPointLoadError, ModuleNotFoundError) as error:
        missing = error.__cause__ if isinstance(error, registry.EntryPointLoadError) else error
        # Only an unfinished part of the environment's *own* package is skipped.
        if isinstance(missing, ModuleNotFoundError) and (missing.name or "").startswith(package):
            pytest.skip(f"{name!r} is registered but {missing.name} is not in this checkout yet")
        raise


def test_accepts_instances_and_gym_envs():
    check_env(ArithEnvironment(max_literal=50))
    env = gymnasium.make("absolutezero/Arith-v0")
    check_env(env, gym=False)
    with pytest.raises(TypeError, match="needs an environment name"):
        check_env(gymnasium.make("CartPole-v1"))


class AcceptsGarbage(ArithEnvironment):
    def validate(self, prompts, responses):
        return [Validation(Task("evaluate", {"expression": "1 + 1", "value": 2})) for _ in responses]


class ShortVerify(ArithEnvironment):
    def verify(self, tasks, prompts, responses):
        return super().verify(tasks, prompts, responses)[:-1]


class RandomPrompt(ArithEnvironment):
    def proposer_prompt(self, task_type, references, rng):
        prompt = super().proposer_prompt(task_type, references, rng)
        salt = np.random.default_rng().integers(10**9)  # ignores the caller's generator
        return Prompt(prompt.messages, context={**prompt.context, "salt": int(salt)})


class LossySerialisation(ArithEnvironment):
    def serialize_task(self, task):
        data = task.to_json()
        data["payload"].pop("value")
        return data

    def deserialize_task(self, data):
        return Task(data["task_type"], data["payload"])


class NoReason(ArithEnvironment):
    def verify(self, tasks, prompts, responses):
        return [Verdict(0.0) for _ in responses]


class BadRole(ArithEnvironment):
    def solver_prompt(self, task):
        return Prompt(messages=({"role": "robot", "content": "solve"},))


class NoTaskTypes(ArithEnvironment):
    task_types = ()


@pytest.mark.parametrize(
    "env, fragment",
    [
        (AcceptsGarbage(), "garbage proposal .* was accepted"),
        (ShortVerify(), "one verdict per response"),
        (RandomPrompt(), "differs for equal generator states"),
        (LossySerialisation(), "round trip changed a seed task"),
        (NoReason(), "has no reason"),
        (BadRole(), "chat role 'robot'"),
        (NoTaskTypes(), "task_types must be a non-empty tuple"),
    ],
)
def test_broken_environments_are_caught(env, fragment):
    with pytest.raises(ConformanceError, match=fragment):
        check_env(env)
