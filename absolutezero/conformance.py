"""``check_env``: does an environment honour the protocol and the Gymnasium API?

Run it on a new environment before training with it (the test suite runs it on every
registered one)::

    from absolutezero.conformance import check_env
    check_env("arith")

It checks what the core relies on without knowing anything about the environment's tasks:

* identity: ``name`` is a non-empty string, ``task_types`` a non-empty tuple of distinct
  strings, ``reference_types`` names known task types;
* seed tasks have the requested type and survive ``serialize_task`` -> JSON text ->
  ``deserialize_task`` unchanged;
* proposer and solver prompts are well-formed (roles, string contents, string prefill,
  JSON-serialisable context) and deterministic for equal generator states;
* ``validate``/``verify`` return one ``Validation``/``Verdict`` per input, scores in
  [0, 1], and reject garbage responses with a reason, deterministically;
* the Gymnasium adapter passes :func:`gymnasium.utils.env_checker.check_env` and its
  episodes behave: garbage proposals terminate with the format penalty, solve episodes
  on seed tasks terminate with a finite reward, equal seeds give equal observations.

It cannot check that a *valid* proposal is accepted (only the environment knows what one
looks like); environments should test that themselves.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from absolutezero.protocol import Environment, Prompt, Task, Validation, Verdict

__all__ = ["ConformanceError", "GARBAGE_RESPONSES", "check_env"]

#: Responses no environment may accept as a proposal or score as a correct answer.
GARBAGE_RESPONSES: tuple[str, ...] = (
    "",
    "   \n",
    "I don't know.",
    "<answer></answer>",
    "\x00\x01\x02 binary \ufffd garbage",
    "}{)(][ " * 20,
)

_CHAT_ROLES = ("system", "user", "assistant")


class ConformanceError(AssertionError):
    """The environment breaks the protocol; the message says which rule and where."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceError(message)


def _check_prompt(prompt: Any, where: str) -> None:
    _require(isinstance(prompt, Prompt), f"{where} must return a Prompt, got {type(prompt).__name__}")
    for message in prompt.messages:
        _require(message["role"] in _CHAT_ROLES, f"{where}: chat role {message['role']!r} is not one of {_CHAT_ROLES}")
        _require(isinstance(message["content"], str), f"{where}: message content must be a str")
    _require(prompt.messages[-1]["role"] != "assistant", f"{where}: the last message must not be the assistant's (use prefill)")
    _require(isinstance(prompt.prefill, str), f"{where}: prefill must be a str")
    try:
        json.dumps(dict(prompt.context))
    except (TypeError, ValueError) as error:
        raise ConformanceError(f"{where}: prompt context must be JSON-serialisable ({error})") from None


def _check_identity(env: Environment) -> None:
    label = type(env).__name__
    _require(isinstance(env.name, str) and bool(env.name), f"{label}.name must be a non-empty str")
    types = env.task_types
    _require(isinstance(types, tuple) and len(types) > 0, f"{label}.task_types must be a non-empty tuple")
    _require(all(isinstance(t, str) and t for t in types), f"{label}.task_types must be non-empty strings")
    _require(len(set(types)) == len(types), f"{label}.task_types has duplicates: {types}")
    for task_type in types:
        refs = env.reference_types(task_type)
        _require(
            len(refs) > 0 and all(r in types for r in refs),
            f"{label}.reference_types({task_type!r}) = {refs!r} must name known task types",
        )


def _check_seeds(env: Environment) -> dict[str, list[Task]]:
    seeds: dict[str, list[Task]] = {}
    for task_type in env.task_types:
        tasks = env.seed_tasks(task_type)
        _require(isinstance(tasks, list), f"seed_tasks({task_type!r}) must return a list")
        for task in tasks:
            _require(isinstance(task, Task), f"seed_tasks({task_type!r}) returned a {type(task).__name__}")
            _require(task.task_type == task_type, f"seed_tasks({task_type!r}) returned a {task.task_type!r} task")
            data = env.serialize_task(task)
            try:
                text = json.dumps(data)
            except (TypeError, ValueError) as error:
                raise ConformanceError(f"serialize_task({task!r:.80}) is not JSON-serialisable: {error}") from None
            back = env.deserialize_task(json.loads(text))
            _require(back == task, f"serialisation round trip changed a seed task: {task!r:.120} -> {back!r:.120}")
        seeds[task_type] = tasks
    _require(any(seeds.values()), f"{env.name!r} has no seed task of any type: buffers would start empty")
    return seeds


def _check_prompts(env: Environment, seeds: dict[str, list[Task]], seed: int) -> dict[str, Prompt]:
    prompts: dict[str, Prompt] = {}
    for task_type in env.task_types:
        refs = [t for name in env.reference_types(task_type) for t in seeds.get(name, [])]
        first = env.proposer_prompt(task_type, refs, np.random.default_rng(seed))
        _check_prompt(first, f"proposer_prompt({task_type!r})")
        again = env.proposer_prompt(task_type, refs, np.random.default_rng(seed))
        _require(first == again, f"proposer_prompt({task_type!r}) differs for equal generator states")
        prompts[task_type] = first
        for task in seeds[task_type]:
            _check_prompt(env.solver_prompt(task), f"solver_prompt({task!r:.80})")
    return prompts


def _check_validate(env: Environment, prompts: dict[str, Prompt]) -> None:
    _require(env.validate([], []) == [], "validate([], []) must return []")
    for task_type, prompt in prompts.items():
        batch = [prompt] * len(GARBAGE_RESPONSES)
        results = env.validate(batch, list(GARBAGE_RESPONSES))
        _require(
            isinstance(results, list) and len(results) == len(GARBAGE_RESPONSES),
            f"validate must return one result per response ({len(GARBAGE_RESPONSES)}), got {len(results)}",
        )
        for response, result in zip(GARBAGE_RESPONSES, results):
            _require(isinstance(result, Validation), f"validate returned a {type(result).__name__}")
            _require(not result.valid, f"{task_type!r}: garbage proposal {response!r:.40} was accepted")
            _require(bool(result.reason), f"{task_type!r}: rejection of {response!r:.40} has no reason")
        _require(env.validate(batch, list(GARBAGE_RESPONSES)) == results, f"{task_type!r}: validate is not deterministic")


def _check_verify(env: Environment, seeds: dict[str, list[Task]]) -> None:
    _require(env.verify([], [], []) == [], "verify([], [], []) must return []")
    for task in (t for tasks in seeds.values() for t in tasks):
        prompt = env.solver_prompt(task)
        count = len(GARBAGE_RESPONSES)
        verdicts = env.verify([task] * count, [prompt] * count, list(GARBAGE_RESPONSES))
        _require(isinstance(verdicts, list) and len(verdicts) == count, "verify must return one verdict per response")
        for response, verdict in zip(GARBAGE_RESPONSES, verdicts):
            _require(isinstance(verdict, Verdict), f"verify returned a {type(verdict).__name__}")
            _require(0.0 <= verdict.score <= 1.0, f"verdict score {verdict.score} is outside [0, 1]")
            _require(not verdict.correct, f"garbage answer {response!r:.40} scored correct on {task!r:.80}")
            _require(bool(verdict.reason), f"wrong answer {response!r:.40} has no reason")
        again = env.verify([task] * count, [prompt] * count, list(GARBAGE_RESPONSES))
        _require(again == verdicts, f"verify is not deterministic on {task!r:.80}")


def _check_gym(env: Environment, seeds: dict[str, list[Task]], seed: int) -> None:
    import warnings

    from gymnasium.utils.env_checker import check_env as gym_check_env

    from absolutezero.gym_adapter import AbsoluteZeroEnv

    adapter = AbsoluteZeroEnv(env, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # style hints about non-Box spaces are irrelevant here
        gym_check_env(adapter, skip_render_check=True)
    for task_type in env.task_types:
        obs, info = adapter.reset(seed=seed, options={"role": "propose", "task_type": task_type})
        _require(adapter.observation_space.contains(obs), "reset observation is outside the observation space")
        _require(info.get("role") == "propose" and info.get("task_type") == task_type, "reset info lacks role/task_type")
        obs_again, _ = adapter.reset(seed=seed, options={"role": "propose", "task_type": task_type})
        _require(obs == obs_again, f"{task_type!r}: equal seeds gave different propose observations")
        _, reward, terminated, truncated, info = adapter.step("garbage")
        _require(terminated and not truncated, f"{task_type!r}: a garbage proposal must end the episode")
        _require(info.get("valid") is False and info.get("reason"), f"{task_type!r}: invalid proposal info lacks valid/reason")
        _require(reward == adapter.scheme.format_penalty, f"{task_type!r}: garbage proposal reward {reward} != format penalty")
        if seeds[task_type]:
            adapter.reset(seed=seed, options={"role": "solve", "task_type": task_type})
            _, reward, terminated, _, info = adapter.step("garbage")
            _require(terminated and math.isfinite(reward), f"{task_type!r}: a solve episode must end after one answer")
            _require(info.get("correct") is False, f"{task_type!r}: garbage answer reported correct")


def check_env(env: str | Environment | Any, seed: int = 0, gym: bool = True) -> None:
    """Check an environment's protocol and Gymnasium conformance.

    Args:
        env: a registered environment name (built with default options and closed
            afterwards), an :class:`Environment`, or a Gymnasium env wrapping one
            (``gymnasium.make("absolutezero/Arith-v0")``).
        seed: generator seed for prompts and the adapter.
        gym: also check the Gymnasium adapter.

    Returns:
        None when every check passes.

    Raises:
        ConformanceError: the first broken rule, with what and where.
    """
    owned = False
    if isinstance(env, str):
        from absolutezero.registry import make_environment

        env, owned = make_environment(env), True
    elif not isinstance(env, Environment):
        unwrapped = getattr(env, "unwrapped", None)
        inner = getattr(unwrapped, "environment", None)
        if not isinstance(inner, Environment):
            raise TypeError(
                "check_env needs an environment name, an Environment or a Gymnasium env made "
                f"from one (absolutezero/<Name>-v0), got {type(env).__name__}"
            )
        env = inner
    try:
        _check_identity(env)
        seeds = _check_seeds(env)
        prompts = _check_prompts(env, seeds, seed)
        _check_validate(env, prompts)
        _check_verify(env, seeds)
        if gym:
            _check_gym(env, seeds, seed)
    finally:
        if owned:
            env.close()
