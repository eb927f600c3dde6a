"""A Gymnasium ``Env`` over any registered absolutezero environment.

``import absolutezero`` registers ``absolutezero/<Name>-v0`` for every environment, so::

    env = gymnasium.make("absolutezero/Arith-v0", seed=0)
    obs, info = env.reset(options={"role": "propose", "task_type": "evaluate"})
    obs, reward, terminated, truncated, info = env.step("<answer>3 * (4 + 5)</answer>")

Episodes
--------
*Propose* (``options={"role": "propose", "task_type": t}``): the observation is the
proposer prompt built from K reference tasks drawn from the adapter's buffers. The first
action is the proposal.

* Invalid: the episode terminates with ``reward = format_penalty`` and
  ``info["valid"] = False`` with ``info["reason"]``.
* Valid: the task is added to the buffers, the episode continues (reward 0) and the next
  observation is the solver prompt of the new task. The next ``learnability_samples``
  actions are solver answers to it (give *sampled*, not greedy, answers); each step
  reports the answer's ``correct`` flag and ``solve_reward`` in ``info`` with reward 0,
  and the last one terminates the episode with the proposer's learnability reward.

*Solve* (``options={"role": "solve", "task_type": t}``): the observation is the solver
prompt of a task sampled from the buffers (seed tasks plus tasks validated in propose
episodes, recency-biased); one action (the answer) terminates with the solver reward.

Rewards come from :mod:`absolutezero.rewards` applied to the environment's own
``Validation``/``Verdict`` objects, i.e. exactly what the self-play trainer computes for
the same responses. With a ``plugin_manager``, proposal/answer filters and reward terms
apply as in the trainer.

Text spaces
-----------
Observations and actions are :class:`UnicodeText` spaces: any string of at most
``max_text_length`` characters (default 65,536; any Unicode character, because prompts and
model output are arbitrary text). An observation is the prompt's chat messages rendered
as ``"### <role>\\n<content>\\n\\n"`` blocks followed by ``"### assistant\\n" + prefill``;
the structured :class:`~absolutezero.protocol.Prompt` is in ``info["prompt"]``. An action
is the completion *after* the prefill: the adapter hands ``prefill + action`` to the
environment, as the trainer does.

Answer templates: when ``info["prompt"].segments`` is non-empty (the code environment's
default), the completion must contain the template's forced text, as the trainer's agent
produces it. Write only the free parts and build the action with
:func:`absolutezero.protocol.fill_template`::

    action = fill_template(info["prompt"], ["x):\n    return x * 2\n```", "21\n"])
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

import gymnasium
import numpy as np
import pluggy
from gymnasium import spaces

from absolutezero import plugins as plugin_helpers
from absolutezero.buffers import BufferSet
from absolutezero.config import did_you_mean
from absolutezero.protocol import PROPOSE, ROLES, SOLVE, Environment, Prompt, Task, Validation, Verdict
from absolutezero.rewards import RewardScheme, propose_reward, solve_reward

__all__ = ["AbsoluteZeroEnv", "UnicodeText", "render_prompt"]

DEFAULT_MAX_TEXT_LENGTH = 65_536
_OPTION_KEYS = ("role", "task_type")
_SAMPLE_CHARSET = string.ascii_letters + string.digits + string.punctuation + " \n"


class UnicodeText(spaces.Text):
    """A text space containing every ``str`` of ``min_length``..``max_length`` characters.

    :class:`gymnasium.spaces.Text` needs an explicit charset and builds lookup tables over
    it, which is impractical for all of Unicode; this space accepts any character in
    :meth:`contains` and samples (for smoke tests) from printable ASCII.
    """

    def __init__(self, max_length: int, min_length: int = 0, seed: int | np.random.Generator | None = None) -> None:
        super().__init__(max_length, min_length=min_length, charset=_SAMPLE_CHARSET, seed=seed)

    def contains(self, x: Any) -> bool:
        """True for a ``str`` whose length is within the bounds (any characters)."""
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length})"


def render_prompt(prompt: Prompt) -> str:
    """The text observation for ``prompt`` (see the module docstring for the format)."""
    blocks = [f"### {message['role']}\n{message['content']}\n\n" for message in prompt.messages]
    return "".join(blocks) + "### assistant\n" + prompt.prefill


class AbsoluteZeroEnv(gymnasium.Env[str, str]):
    """Propose and solve episodes over one absolutezero environment.

    Args:
        environment: a registered environment name, or an :class:`Environment` instance
            (then the caller keeps ownership: :meth:`close` does not close it).
        env_options: constructor options when ``environment`` is a name.
        reward_variant, format_penalty, wrong_answer, unlearnable: the reward scheme, as
            :meth:`RewardScheme.from_config` (the run config's ``rewards`` section).
        learnability_samples: n >= 2 solver answers per valid proposal.
        references: K reference tasks shown to the proposer.
        buffer_capacity, recency_weight: buffer size per task type and solver-task recency
            bias, as the run config's ``selfplay`` section.
        max_text_length: the longest observation or action, in characters.
        seed: seed for the first :meth:`reset` without an explicit seed.
        plugin_manager: optional; applies plugin filters and reward terms like the trainer.
        render_mode: ``None`` or ``"ansi"`` (render returns the current observation).

    Raises:
        ValueError: a bad numeric argument or reward variant.
        UnknownNameError, ConfigError: an unknown environment or option (from the registry).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        environment: str | Environment = "code",
        env_options: Mapping[str, Any] | None = None,
        reward_variant: str = "paper",
        format_penalty: float | None = None,
        wrong_answer: float | None = None,
        unlearnable: float | None = None,
        learnability_samples: int = 2,
        references: int = 3,
        buffer_capacity: int = 4096,
        recency_weight: float = 0.5,
        max_text_length: int = DEFAULT_MAX_TEXT_LENGTH,
        seed: int | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
        render_mode: str | None = None,
    ) -> None:
        if isinstance(learnability_samples, bool) or not isinstance(learnability_samples, int) or learnability_samples < 2:
            raise ValueError(
                f"learnability_samples must be an integer >= 2, got {learnability_samples!r}: with one "
                "answer the solve rate is always 0 or 1 and the proposer reward is constant"
            )
        if isinstance(references, bool) or not isinstance(references, int) or references < 0:
            raise ValueError(f"references must be an integer >= 0, got {references!r}")
        if not 0.0 <= float(recency_weight) <= 1.0:
            raise ValueError(f"recency_weight must be in [0, 1], got {recency_weight!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.scheme = RewardScheme.from_config(reward_variant, format_penalty, wrong_answer, unlearnable)
        if isinstance(environment, Environment):
            if env_options:
                raise ValueError("env_options only apply when environment is a name, not an instance")
            self.environment, self._owns_environment = environment, False
        elif isinstance(environment, str):
            from absolutezero.registry import make_environment

            self.environment, self._owns_environment = make_environment(environment, env_options or {}), True
        else:
            raise TypeError(
                f"environment must be a registered name or an Environment, got {type(environment).__name__}"
            )
        self.learnability_samples = learnability_samples
        self.references = references
        self.recency_weight = float(recency_weight)
        self.plugin_manager = plugin_manager
        self.render_mode = render_mode
        self.observation_space = UnicodeText(max_text_length)
        self.action_space = UnicodeText(max_text_length)
        self.buffers = BufferSet(self.environment.task_types, buffer_capacity)
        for task_type in self.environment.task_types:
            self.buffers.add_many(self.environment.seed_tasks(task_type), step=0, seed=True)
        self._initial_seed = seed
        self._episodes = 0
        self._state: dict[str, Any] | None = None  # None: no episode running

    # -- episode control --------------------------------------------------------------

    def _options(self, options: Mapping[str, Any] | None) -> tuple[str, str]:
        options = dict(options or {})
        for key in options:
            if key not in _OPTION_KEYS:
                raise ValueError(
                    f"unknown reset option {key!r}{did_you_mean(str(key), _OPTION_KEYS)} "
                    f"(accepted: {', '.join(_OPTION_KEYS)})"
                )
        role = options.get("role", PROPOSE)
        if role not in ROLES:
            raise ValueError(f"role must be 'propose' or 'solve', got {role!r}{did_you_mean(str(role), ROLES)}")
        task_types = self.environment.task_types
        task_type = options.get("task_type")
        if task_type is None:
            task_type = task_types[int(self.np_random.integers(len(task_types)))]
        elif task_type not in task_types:
            raise ValueError(
                f"unknown task type {task_type!r}{did_you_mean(str(task_type), task_types)} for "
                f"environment {self.environment.name!r} (task types: {', '.join(task_types)})"
            )
        return role, task_type

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start a propose or solve episode.

        Args:
            seed: reseeds the adapter's generator (reference and task sampling, default
                task type); buffers are kept across episodes.
            options: ``{"role": "propose" | "solve", "task_type": ...}``; defaults: role
                ``"propose"``, a task type drawn with the seeded generator.

        Returns:
            ``(observation, info)``: the prompt text and ``{"role", "task_type",
            "prompt", "phase"}`` (phase ``"propose"`` or ``"solve"``).

        Raises:
            ValueError: unknown option, role or task type (with did-you-mean).
        """
        if seed is None and self._initial_seed is not None:
            seed, self._initial_seed = self._initial_seed, None
        super().reset(seed=seed)
        self._state = None
        role, task_type = self._options(options)
        if role == PROPOSE:
            types = self.environment.reference_types(task_type)
            refs = self.buffers.sample_references(types, self.references, self.np_random)
            prompt = self.environment.proposer_prompt(task_type, refs, self.np_random)
        else:
            tasks = self.buffers.sample_for_solving(task_type, 1, self.np_random, self.recency_weight)
            if not tasks:
                raise RuntimeError(f"no {task_type!r} task to solve: the buffer is empty")
            prompt = self.environment.solver_prompt(tasks[0])
        self._state = {
            "role": role,
            "task_type": task_type,
            "phase": PROPOSE if role == PROPOSE else SOLVE,
            "prompt": prompt,
            "task": None if role == PROPOSE else tasks[0],
            "validation": None,
            "verdicts": [],
            "done": False,
        }
        self._episodes += 1
        return self._observe(prompt), self._info()

    def _observe(self, prompt: Prompt) -> str:
        text = render_prompt(prompt)
        if len(text) > self.observation_space.max_length:
            raise RuntimeError(
                f"the prompt is {len(text)} characters, above max_text_length="
                f"{self.observation_space.max_length}; construct the adapter with a larger one"
            )
        return text

    def _info(self, **extra: Any) -> dict[str, Any]:
        state = self._state
        assert state is not None
        return {"role": state["role"], "task_type": state["task_type"], "phase": state["phase"],
                "prompt": state["prompt"], **extra}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Submit one response (the completion after the prompt's prefill).

        Returns:
            ``(observation, reward, terminated, truncated, info)``. ``truncated`` is
            always False. ``info`` has ``role``, ``task_type``, ``phase``, ``prompt``,
            ``valid``, ``reason`` and, for answers, ``correct``, ``format_ok``, ``score``
            and ``solve_reward``; a propose episode's last step adds ``success_rate``.
            When terminated, the observation is the last prompt's text again.

        Raises:
            RuntimeError: no episode is running (call reset) or it is already over.
            ValueError: the action is not a string within ``max_text_length``.
        """
        state = self._state
        if state is None:
            raise RuntimeError("step() before reset(): call reset() to start an episode")
        if state["done"]:
            raise RuntimeError("this episode is over (terminated); call reset() to start a new one")
        if not self.action_space.contains(action):
            raise ValueError(
                f"an action must be a str of at most {self.action_space.max_length} characters, "
                f"got {type(action).__name__}" + (f" of length {len(action)}" if isinstance(action, str) else "")
            )
        response = state["prompt"].prefill + action
        if state["phase"] == PROPOSE:
            return self._step_proposal(state, response)
        return self._step_answer(state, response)

    def _step_proposal(self, state: dict[str, Any], response: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        prompt = state["prompt"]
        validation = self.environment.validate([prompt], [response])[0]
        if validation.valid and self.plugin_manager is not None:
            reason = plugin_helpers.filter_proposal(self.plugin_manager, validation.task, response)
            if reason is not None:
                validation = Validation(None, reason=reason, format_ok=True)
        state["validation"] = validation
        if not validation.valid:
            state["done"] = True
            reward = self._bonus(PROPOSE, None, response, propose_reward(validation, [], self.scheme))
            info = self._info(valid=False, reason=validation.reason, format_ok=validation.format_ok)
            return self._observe(prompt), reward, True, False, info
        task = validation.task
        self.buffers.add(task, step=self._episodes)
        state.update(task=task, phase=SOLVE, prompt=self.environment.solver_prompt(task), response=response)
        info = self._info(valid=True, reason="", task=task, answers_left=self.learnability_samples)
        return self._observe(state["prompt"]), 0.0, False, False, info

    def _verdict(self, task: Task, prompt: Prompt, response: str) -> Verdict:
        if self.plugin_manager is not None:
            reason = plugin_helpers.filter_answer(self.plugin_manager, task, response)
            if reason is not None:
                return Verdict(0.0, format_ok=False, reason=reason)
        return self.environment.verify([task], [prompt], [response])[0]

    def _step_answer(self, state: dict[str, Any], response: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        task, prompt = state["task"], state["prompt"]
        verdict = self._verdict(task, prompt, response)
        answer_reward = self._bonus(SOLVE, task, response, solve_reward(verdict, self.scheme))
        info = self._info(
            valid=True, reason=verdict.reason, correct=verdict.correct, format_ok=verdict.format_ok,
            score=verdict.score, solve_reward=answer_reward, task=task,
        )
        if state["role"] == SOLVE:
            state["done"] = True
            return self._observe(prompt), answer_reward, True, False, info
        state["verdicts"].append(verdict)
        left = self.learnability_samples - len(state["verdicts"])
        info["answers_left"] = left
        if left > 0:
            return self._observe(prompt), 0.0, False, False, info
        state["done"] = True
        verdicts = state["verdicts"]
        base = propose_reward(state["validation"], verdicts, self.scheme)
        reward = self._bonus(PROPOSE, task, state["response"], base)
        info["success_rate"] = sum(v.correct for v in verdicts) / len(verdicts)
        return self._observe(prompt), reward, True, False, info

    def _bonus(self, role: str, task: Task | None, response: str, reward: float) -> float:
        if self.plugin_manager is None:
            return reward
        return reward + plugin_helpers.reward_bonus(self.plugin_manager, role, task, response, reward)

    def render(self) -> str | None:
        """The current observation text in ``"ansi"`` mode, else None."""
        if self.render_mode != "ansi" or self._state is None:
            return None
        return render_prompt(self._state["prompt"])

    def close(self) -> None:
        """Close the wrapped environment if this adapter created it. Safe to call twice."""
        if self._owns_environment:
            self.environment.close()
        super().close()
