"""The contract between the self-play core, environments and agents.

Everything here is environment-agnostic and batch-friendly: the core never looks inside a
task's payload, and every expensive call takes a sequence so an environment can fan work
out to a process pool (the code environment validates a whole batch of proposals in its
sandbox at once).

Roles and the flow of one self-play step, per task type ``t``::

    refs    = buffers.sample_references(t, K)              # core
    prompt  = env.proposer_prompt(t, refs, rng)             # environment
    text    = agent.generate([prompt])                      # agent
    result  = env.validate([prompt], [text])                # environment -> Task | rejection
    prompt' = env.solver_prompt(task)                       # environment
    answers = agent.generate([prompt'], num_samples=n)      # agent
    verdict = env.verify([task]*n, answers)                 # environment -> score in [0, 1]
    rewards, advantages                                     # core (rewards.py, trrpp.py)
    agent.update(samples, advantages)                       # agent

A response handed to ``validate``/``verify`` is always ``prompt.prefill + completion``: the
prefill is text the assistant turn was forced to start with (e.g. ``"<think>"``), so the
environment parses one complete answer.

**Answer templates.** A prompt may also carry ``segments``: the answer's fixed parts are
forced by the agent and the model writes only the free parts between them. Segment k is
"write freely until ``stop`` appears, then the text ``then`` follows (forced)"; after the
last segment's forced text the completion ends. A small model that cannot reliably write
fences and headers can still fill them in, and forced tokens are masked out of training
(:attr:`Sample.forced`) like the prompt. The completion (and so the response) contains
the forced text, so environments parse it exactly as they would a free-running answer.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

PROPOSE = "propose"
SOLVE = "solve"
ROLES: tuple[str, str] = (PROPOSE, SOLVE)


@dataclass(frozen=True)
class Task:
    """One validated problem.

    ``task_type`` names the reasoning mode (e.g. ``"deduction"``); ``payload`` is the
    environment's own JSON-serialisable description (for code: program, input, gold
    output, ...). The core stores, deduplicates and serialises tasks without reading the
    payload.
    """

    task_type: str
    payload: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"task_type": self.task_type, "payload": dict(self.payload)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Task":
        if not isinstance(data, Mapping) or "task_type" not in data or "payload" not in data:
            raise ValueError(
                f"not a serialised Task (need keys 'task_type' and 'payload'): {data!r:.200}"
            )
        return cls(task_type=str(data["task_type"]), payload=dict(data["payload"]))

    def key(self) -> str:
        """Canonical identity used for deduplication in buffers."""
        return json.dumps(self.to_json(), sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class Segment:
    """One free part of an answer template.

    The model writes freely until its text *in this segment* contains ``stop`` (the
    stop text is kept; the segment ends with the token that completed it), then ``then``
    is appended verbatim (forced, never trained on). ``stop`` must be non-empty: a
    segment with no end would make every later forced part unreachable. ``max_tokens``
    bounds the free part: a segment still open after that many sampled tokens ends the
    completion (``finish_reason="length"``), so one rambling sample cannot hold a whole
    batch's decoding for the global token limit.
    """

    stop: str
    then: str = ""
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.stop, str) or not self.stop:
            raise ValueError(f"a Segment needs a non-empty stop string, got {self.stop!r}")
        if not isinstance(self.then, str):
            raise ValueError(f"Segment.then must be a str, got {type(self.then).__name__}")
        if self.max_tokens is not None and (isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1):
            raise ValueError(f"Segment.max_tokens must be a positive int or None, got {self.max_tokens!r}")


@dataclass(frozen=True)
class Prompt:
    """What the agent is asked: chat ``messages``, an optional assistant ``prefill`` and
    an optional answer template (``segments``).

    ``prefill`` is forced text the assistant turn starts with. ``segments`` (see
    :class:`Segment` and the module docstring) make the rest of the answer a template:
    free part, forced text, free part, ... and the completion ends after the last forced
    text. With no segments the model writes freely until an end marker.

    ``context`` carries environment data from prompt construction to ``validate`` or
    ``verify`` (e.g. the program an induction proposal must write inputs for); the core
    passes it through untouched. It must be JSON-serialisable.
    """

    messages: tuple[Mapping[str, str], ...]
    prefill: str = ""
    context: Mapping[str, Any] = field(default_factory=dict)
    segments: tuple[Segment, ...] = ()

    def __post_init__(self) -> None:
        if not self.messages:
            raise ValueError("a Prompt needs at least one chat message")
        for message in self.messages:
            if set(message) != {"role", "content"}:
                raise ValueError(
                    f"chat messages need exactly the keys 'role' and 'content', got {sorted(message)}"
                )
        if not isinstance(self.segments, tuple) or not all(isinstance(s, Segment) for s in self.segments):
            raise ValueError(f"Prompt.segments must be a tuple of Segment, got {self.segments!r:.200}")


def fill_template(prompt: Prompt, parts: Sequence[str]) -> str:
    """The completion an agent following ``prompt``'s template produces from the free
    ``parts`` (one per segment): ``part_1 + then_1 + part_2 + then_2 + ...``.

    For callers that write the free parts themselves (scripts, the Gymnasium adapter,
    tests). Each part must end with its segment's stop text and contain it nowhere
    else, exactly as a templated generation would end it.

    Raises:
        ValueError: the prompt has no template, the number of parts is wrong, or a part
            does not end at its stop text.
    """
    if not prompt.segments:
        raise ValueError("this prompt has no answer template (segments); pass the whole completion")
    if isinstance(parts, str) or len(parts) != len(prompt.segments):
        raise ValueError(
            f"the template has {len(prompt.segments)} free parts, got "
            f"{'a single string' if isinstance(parts, str) else len(parts)}"
        )
    pieces = []
    for index, (part, segment) in enumerate(zip(parts, prompt.segments)):
        if not isinstance(part, str) or not part.endswith(segment.stop) or segment.stop in part[: -len(segment.stop)]:
            raise ValueError(
                f"free part {index} must end with its stop text {segment.stop!r} and not "
                f"contain it before, got {part!r:.120}"
            )
        pieces.append(part + segment.then)
    return "".join(pieces)


@dataclass(frozen=True)
class Validation:
    """The environment's verdict on one proposal.

    ``task`` is the validated task, or ``None`` when rejected. ``reason`` says why it was
    rejected (empty when accepted). ``format_ok`` is False when the response could not
    even be parsed into a proposal (missing blocks, syntax error) and True when it parsed
    but failed validation (crashed, non-deterministic, unsafe, ...); rewards can treat the
    two differently.
    """

    task: Task | None
    reason: str = ""
    format_ok: bool = True

    @property
    def valid(self) -> bool:
        return self.task is not None


@dataclass(frozen=True)
class Verdict:
    """The environment's score of one answer.

    ``score`` is in [0, 1] (1 = correct). ``format_ok`` is False when the answer could not
    be parsed at all; ``reason`` explains a failure (empty when correct).
    """

    score: float
    format_ok: bool = True
    reason: str = ""

    @property
    def correct(self) -> bool:
        return self.score >= 1.0


class Environment(abc.ABC):
    """A self-play environment: it proposes nothing itself, it validates and verifies.

    Subclasses set ``name`` and ``task_types`` and implement the abstract methods. Their
    constructors declare the environment's options as typed keyword arguments, each
    with one line of help in the class docstring's ``Args:`` section (the run config's
    ``env_options``; see :mod:`absolutezero.options`); no ``**kwargs``, so a misspelt
    option is an error, not silently ignored.

    Attributes:
        name: the registered name (``env=<name>``).
        task_types: the task types it validates and verifies, one buffer each.
        benchmarks: registered benchmark names that measure this environment's skills;
            a run's ``eval.benchmarks`` defaults to them (empty: nothing to evaluate).
    """

    name: ClassVar[str] = ""
    task_types: ClassVar[tuple[str, ...]] = ()
    benchmarks: ClassVar[tuple[str, ...]] = ()

    def reference_types(self, task_type: str) -> tuple[str, ...]:
        """Buffers the proposer's K references for ``task_type`` are drawn from.

        Default: the task type's own buffer. (Code induction draws programs from the
        deduction and abduction buffers.)
        """
        return (task_type,)

    @abc.abstractmethod
    def seed_tasks(self, task_type: str) -> list[Task]:
        """Tasks that always exist before self-play starts (e.g. the identity triplet)."""

    @abc.abstractmethod
    def proposer_prompt(
        self, task_type: str, references: Sequence[Task], rng: np.random.Generator
    ) -> Prompt:
        """The prompt asking the model to propose a new task of ``task_type``.

        ``references`` are K tasks from ``reference_types(task_type)`` buffers (possibly
        fewer early on). ``rng`` is the caller's seeded generator for any random choice.
        """

    @abc.abstractmethod
    def validate(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[Validation]:
        """Turn each proposer response into a validated Task or a rejection with reason.

        Element-wise: result i depends on prompt i and response i only (no shared random
        draws), because a multi-process run validates the batch in shares, one per rank.
        """

    @abc.abstractmethod
    def solver_prompt(self, task: Task) -> Prompt:
        """The prompt asking the model to solve ``task``."""

    @abc.abstractmethod
    def verify(
        self, tasks: Sequence[Task], prompts: Sequence[Prompt], responses: Sequence[str]
    ) -> list[Verdict]:
        """Score each solver response against its task (same lengths, element-wise:
        verdict i depends on item i only, so the batch can be verified in shares)."""

    def serialize_task(self, task: Task) -> dict[str, Any]:
        """JSON form of a task (buffers, checkpoints, logs)."""
        return task.to_json()

    def deserialize_task(self, data: Mapping[str, Any]) -> Task:
        task = Task.from_json(data)
        if task.task_type not in self.task_types:
            raise ValueError(
                f"task type {task.task_type!r} is not one of {self.name!r}'s {self.task_types}"
            )
        return task

    def close(self) -> None:
        """Release worker processes or other resources. Safe to call twice."""

    def __enter__(self) -> "Environment":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: ``Sample.finish_reason`` of a prompt the agent did not generate for because it is
#: longer than its prompt limit; such a sample has no completion and is never trained on.
PROMPT_TOO_LONG = "prompt_too_long"


@dataclass
class Sample:
    """One generated completion, with what training needs and nothing re-tokenised.

    ``prompt_ids`` are the exact ids the model was conditioned on (chat template and
    prefill included); ``completion_ids`` the sampled ids; ``logprobs`` the behaviour
    policy's log-probability of each sampled id (same length as ``completion_ids``);
    ``text`` the decoded completion (without the prefill); ``finish_reason`` is
    ``"stop"`` (an end marker was produced, or the answer template was completed) or
    ``"length"`` (cut at max tokens) or ``PROMPT_TOO_LONG`` (not generated). ``forced`` marks the completion ids that an answer
    template forced rather than the policy sampling them (empty = none forced); learners
    must mask them out like the prompt, since the policy did not choose them.
    """

    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: str = "stop"
    forced: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.logprobs) != len(self.completion_ids):
            raise ValueError(
                f"logprobs ({len(self.logprobs)}) and completion_ids "
                f"({len(self.completion_ids)}) must have the same length"
            )
        if self.forced and len(self.forced) != len(self.completion_ids):
            raise ValueError(
                f"forced ({len(self.forced)}) must be empty or as long as completion_ids "
                f"({len(self.completion_ids)})"
            )

    def trained_mask(self) -> list[bool]:
        """True at each completion position the policy sampled (the ones to train on)."""
        if not self.forced:
            return [True] * len(self.completion_ids)
        return [not forced for forced in self.forced]


class Agent(abc.ABC):
    """The policy: generates samples and learns from advantages.

    Constructors declare the agent's options as typed keyword arguments with one line
    of help each in the class docstring's ``Args:`` section (the run config's
    ``agent_options``; see :mod:`absolutezero.options`). A constructor that takes a
    ``seed`` receives the run's seed, to seed the agent's own generators.
    """

    #: Options that cannot change what the *untrained* agent generates (learning rate,
    #: micro-batches, ...): runs that differ only in them share their starting tasks
    #: (:mod:`absolutezero.start_cache`). Empty: every option counts.
    training_options: ClassVar[frozenset[str]] = frozenset()

    def reseed(self, seed: int) -> None:
        """Restart the agent's own randomness from ``seed``.

        Called once when training starts (not on resume), so that training does not
        depend on how the starting tasks were found (proposed now, read from a file or
        from the start cache). The default does nothing: right for an agent without
        randomness of its own.
        """

    @abc.abstractmethod
    def generate(
        self, prompts: Sequence[Prompt], num_samples: int = 1, greedy: bool = False
    ) -> list[list[Sample]]:
        """``num_samples`` completions for each prompt: result[i][j] is sample j of prompt i."""

    @abc.abstractmethod
    def update(self, samples: Sequence[Sample], advantages: Sequence[float]) -> dict[str, float]:
        """One policy-gradient update; returns training metrics (loss, grad norm, ...)."""

    @abc.abstractmethod
    def save(self, directory: str) -> None:
        """Write model, optimiser and generator state into ``directory`` (caller makes it atomic)."""

    @abc.abstractmethod
    def load(self, directory: str) -> None:
        """Restore exactly what ``save`` wrote."""

    def close(self) -> None:
        """Release resources (generation engines, threads)."""
