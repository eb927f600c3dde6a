"""The self-play step: propose, validate, estimate learnability, solve, train.

:class:`SelfPlayTrainer` is environment- and agent-agnostic: it only calls the
:class:`~absolutezero.protocol.Environment` and :class:`~absolutezero.protocol.Agent`
methods, the buffers, rewards, TRR++ and the plugin hooks. One step (``T`` task types,
``B`` = ``propose_batch``, ``S`` = ``solve_batch``, ``n`` = ``learnability_samples``)::

    1. propose   T*B proposer prompts (K references each, drawn with the trainer's rng)
                 -> ONE agent.generate (1 sampled completion each)
    2. validate  ONE env.validate over all proposals -> plugin absolutezero_filter_proposal
    3. accept    reviewing plugins read the proposals; valid, unreviewed-away tasks enter
                 their buffer (tagged with the step; task_accepted / task_rejected hooks)
    4. solve     T*S tasks: up to ``fresh_share`` of them this step's new valid
                 proposals, the rest drawn from the buffers with recency bias; plus
                 every valid proposal repeated n times (learnability rollouts)
                 -> ONE agent.generate (sampled, never greedy)
                 -> plugin absolutezero_filter_answer -> ONE env.verify
    5. rewards   proposer: format penalty / unlearnable / 1 - p̄ from the n rollouts;
                 solver: correctness; plus plugin absolutezero_reward_terms
    6. TRR++     advantages over all trained samples, groups (role, task type)
    7. update    ONE agent.update(samples, advantages)

Batching every generation of a phase into one call is what makes a step affordable on a
CPU (a batch decodes many times more tokens per second than one prompt), and the n rollouts of one task
are adjacent so the agent can share their prompt's prefill.

Around the step: seeding the buffers before training is :mod:`absolutezero.seeding`,
the held-out probe set :mod:`absolutezero.probe`, metric names
:mod:`absolutezero.step_metrics`; all three reuse the phases here (``propose``,
``accept``, ``solve_greedily``).

**Learnability rollouts are not trained on.** As in the paper, they only estimate p̄ for
the proposer's reward; the solver learns from its solve batch. Training on them would
bias the solver group towards the step's fresh (often trivial or broken) proposals and
double-count tasks whose rewards were already used to score the proposer.

**Consistency.** A step either completes (the agent has been updated and the step
counter advanced) or leaves the trainer as it was before the step: an exception or
Ctrl-C before the update restores the buffers and the rng
(:class:`~absolutezero.rollback.Rollback`, which undoes the step's buffer adds instead
of copying the buffers). Ctrl-C during the update
is held back until the update is finished (the result then has ``interrupted=True``).
The agent's own sampling generator is the one thing an interrupted step cannot rewind.

This module passes 400 lines because the phases share the trainer's state and its one
rng: keeping them in one class keeps the order of random draws (which a run's
reproducibility depends on) readable in one place.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pluggy
from omegaconf import DictConfig, OmegaConf

from absolutezero import hookspecs, plugins
from absolutezero.buffers import BufferSet
from absolutezero.checkpoint import defer_keyboard_interrupt
from absolutezero.config import ConfigError, SelfPlayConfig, did_you_mean
from absolutezero.distributed import Group
from absolutezero.protocol import PROMPT_TOO_LONG, PROPOSE, SOLVE, Agent, Environment, Prompt, Sample, Task, Validation, Verdict
from absolutezero.review import ReviewItem, collect_reviews
from absolutezero.rewards import PAPER, RewardScheme, propose_reward, solve_reward
from absolutezero.rollback import Rollback
from absolutezero.step_metrics import buffer_metrics, scoring_metrics, work_metrics
from absolutezero.step_records import PROMPT_TOO_LONG_VALIDATION, Answer, Proposal, StepResult, StepStats
from absolutezero.trrpp import trrpp_advantages

__all__ = ["TRAINING_SEED_OFFSET", "SelfPlayTrainer", "StepResult"]

#: Added to the run's seed for the randomness of the training steps (see
#: :meth:`SelfPlayTrainer.start_training`): far from it, so the steps do not repeat the
#: draws of seeding.
TRAINING_SEED_OFFSET = 2_000_003


def _empty_plugin_manager() -> pluggy.PluginManager:
    """A manager with the hook specs and no plugin (tests; ranks other than 0)."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    return manager


class SelfPlayTrainer:
    """Runs self-play steps of one agent in one environment.

    Args:
        env: the environment (the trainer does not close it).
        agent: the policy (the trainer does not close it).
        settings: sizes and sampling knobs (``RunConfig.selfplay``).
        rewards: the reward scheme (default: the paper's values).
        seed: seeds the trainer's own ``np.random.Generator`` (references, solver tasks,
            prompt choices); the agent is seeded separately by its constructor.
        plugin_manager: hooks to call; ``None`` = no plugins.

    Raises:
        ConfigError: ``settings.task_types`` names a task type the environment lacks.
    """

    def __init__(
        self,
        env: Environment,
        agent: Agent,
        settings: SelfPlayConfig | None = None,
        rewards: RewardScheme = PAPER,
        seed: int = 0,
        plugin_manager: pluggy.PluginManager | None = None,
        progress: bool = False,
    ) -> None:
        self.env = env
        self.agent = agent
        self.settings = settings if settings is not None else SelfPlayConfig()
        if self.settings.learnability_samples < 2:
            raise ConfigError("selfplay.learnability_samples must be >= 2 (see absolutezero.rewards)")
        self.rewards = rewards
        self.pm = plugin_manager if plugin_manager is not None else _empty_plugin_manager()
        self.task_types = self._select_task_types(list(self.settings.task_types))
        needed = set(self.task_types)
        for task_type in self.task_types:
            needed.update(env.reference_types(task_type))
        unknown = sorted(needed - set(env.task_types))
        if unknown:
            raise ValueError(f"environment {env.name!r} refers to unknown reference types {unknown}")
        self.buffers = BufferSet([t for t in env.task_types if t in needed], self.settings.buffer_capacity)
        self.seed_value = int(seed)
        self.rng = np.random.default_rng(seed)
        self.step_count = 0
        self.seeded = False
        self.progress = progress
        self.held_out: set[str] = set()  # Task.key() of probe tasks: never added to a buffer
        # The run's processes (one, or N under torchrun): validation and verification are
        # split over them, plugin decisions taken on rank 0 (see absolutezero.distributed).
        self.group = Group.current()

    @classmethod
    def from_config(
        cls,
        env: Environment,
        agent: Agent,
        config: DictConfig,
        plugin_manager: pluggy.PluginManager | None = None,
    ) -> "SelfPlayTrainer":
        """A trainer with the ``selfplay``, ``rewards`` and ``seed`` values of a run config."""
        settings = OmegaConf.to_object(config.selfplay)
        if not isinstance(settings, SelfPlayConfig):  # a plain dict from an unstructured config
            settings = SelfPlayConfig(**settings)
        scheme = RewardScheme.from_config(**OmegaConf.to_container(config.rewards))
        return cls(env, agent, settings, scheme, int(config.seed), plugin_manager, bool(config.progress))

    def _select_task_types(self, wanted: list[str]) -> tuple[str, ...]:
        available = list(self.env.task_types)
        if not available:
            raise ValueError(f"environment {self.env.name!r} declares no task types")
        for name in wanted:
            if name not in available:
                raise ConfigError(
                    f"selfplay.task_types: environment {self.env.name!r} has no task type "
                    f"{name!r}{did_you_mean(str(name), available)} (it has {available})"
                )
        return tuple(wanted) if wanted else tuple(available)

    # -- state ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable trainer state (buffers are saved separately, see checkpoint.py)."""
        return {"step": self.step_count, "seeded": self.seeded, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any], buffers: BufferSet | None = None) -> None:
        """Restore :meth:`state_dict` output (and the saved ``buffers``) exactly.

        Raises:
            ValueError: the state is incomplete.
            ConfigError: the buffers' task types differ from the trainer's (e.g. resuming
                with another environment or ``selfplay.task_types``).
        """
        missing = {"step", "seeded", "rng"} - set(state)
        if missing:
            raise ValueError(f"trainer state is missing {sorted(missing)}")
        if buffers is not None:
            if buffers.task_types != self.buffers.task_types:
                raise ConfigError(
                    f"saved buffers hold task types {list(buffers.task_types)} but this run needs "
                    f"{list(self.buffers.task_types)}; resume with the same env and selfplay.task_types"
                )
            self.buffers = buffers
        self.rng.bit_generator.state = state["rng"]
        self.step_count = int(state["step"])
        self.seeded = bool(state["seeded"])

    def use_seed_buffers(self, buffers: BufferSet) -> None:
        """Start from saved seed buffers (a previous run's ``seed_buffers.jsonl``) instead
        of seeding.

        Raises:
            ConfigError: the buffers hold other task types than this trainer needs.
        """
        if buffers.task_types != self.buffers.task_types:
            raise ConfigError(
                f"the seed buffers hold task types {list(buffers.task_types)} but this run needs "
                f"{list(self.buffers.task_types)}; seed with the same env and selfplay.task_types"
            )
        self.buffers = buffers
        self.seeded = True

    def exclude(self, tasks: Iterator[Task] | Sequence[Task]) -> None:
        """Never add these tasks to a buffer (held-out evaluation tasks)."""
        self.held_out.update(task.key() for task in tasks)

    def rollback_point(self) -> Rollback:
        """A :class:`Rollback` to the trainer's state now (the buffers start recording)."""
        return Rollback(self)

    # -- the loop ---------------------------------------------------------------------

    def iterate(self, until: int) -> Iterator[StepResult]:
        """Seed if needed (yielding the seeding result as step 0), then step until
        ``step_count == until``, yielding each step's result."""
        if not self.seeded:
            yield self.seed()
        while self.step_count < until:
            yield self.step()

    def seed(self) -> StepResult:
        """Fill the buffers before training (see :func:`absolutezero.seeding.seed_by_proposing`),
        then :meth:`start_training`."""
        from absolutezero.seeding import seed_by_proposing

        result = seed_by_proposing(self)
        self.start_training()
        return result

    def start_training(self) -> None:
        """Restart the trainer's rng and the agent's randomness from the run's seed
        (:data:`TRAINING_SEED_OFFSET` away from it), once the starting tasks are there.

        Why: the steps then depend on the seed and the starting tasks only, not on how
        many random draws finding those tasks took, so a run that read its tasks from a
        file or the start cache trains exactly as the run that proposed them. Not called
        on resume (the checkpoint holds the states).
        """
        seed = self.seed_value + TRAINING_SEED_OFFSET
        self.rng = np.random.default_rng(seed)
        self.agent.reseed(seed)

    def step(self) -> StepResult:
        """One self-play step (seeds first if :meth:`seed` has not run).

        Returns:
            The step's :class:`StepResult`; ``step_count`` has advanced by one.
        """
        if not self.seeded:
            self.seed()
        step = self.step_count + 1
        rollback = self.rollback_point()
        started = time.perf_counter()
        stats = StepStats()
        try:
            proposals = self.propose(self.task_types, self.rng, stats)
            self.accept(step, stats, proposals)
            answers = self._solve(step, proposals, stats)
            samples, advantages, metrics = self._score(proposals, answers)
            update_started = time.perf_counter()
            with defer_keyboard_interrupt(raise_after=False) as interrupt:
                train_metrics = self.agent.update(samples, list(advantages))
                self.step_count = step
        except BaseException:
            rollback.undo()
            raise
        rollback.keep()
        stats.add_time("update", update_started)
        stats.add_time("step", started)
        metrics.update(work_metrics(stats, train_metrics))
        metrics.update(self.state_metrics(stats))
        metrics.update(self.plugin_metrics(step, metrics))
        return StepResult(step, metrics, interrupted=interrupt.received, stop=stats.reviews.stop)

    def state_metrics(self, stats: StepStats) -> dict[str, float]:
        """Buffer sizes after the step and the counts of its reviews' flags."""
        return {**buffer_metrics(self.buffers), **stats.reviews.counts}

    def plugin_metrics(self, step: int, metrics: dict[str, float]) -> dict[str, float]:
        """What plugins add to the step's ``metrics`` (``absolutezero_extra_metrics``);
        decided on rank 0 like every plugin decision."""
        return self.group.from_main(lambda: plugins.extra_metrics(self.pm, step, metrics.keys()))

    # -- phases -----------------------------------------------------------------------

    def propose(
        self, task_types: Sequence[str], rng: np.random.Generator, stats: StepStats, per_type: int | None = None
    ) -> list[Proposal]:
        """``per_type`` (default ``propose_batch``) proposals per task type in
        ``task_types``, generated in one call, validated by the environment and filtered by
        plugins; nothing is stored.

        ``rng`` draws every prompt's references and choices, in task-type order.
        """
        count = self.settings.propose_batch if per_type is None else int(per_type)
        prompts: list[tuple[str, Prompt]] = []
        for task_type in task_types:
            for _ in range(count):
                references = self.buffers.sample_references(
                    self.env.reference_types(task_type), self.settings.references, rng
                )
                prompts.append((task_type, self.env.proposer_prompt(task_type, references, rng)))
        samples = self._generate([prompt for _, prompt in prompts], stats)
        proposals = [Proposal(t, prompt, sample) for (t, prompt), sample in zip(prompts, samples)]
        validations = self._validate(proposals, stats)
        reasons = self.group.from_main(lambda: [
            plugins.filter_proposal(self.pm, v.task, p.response) if v.valid else None
            for p, v in zip(proposals, validations)
        ])
        for proposal, validation, reason in zip(proposals, validations, reasons):
            if reason is not None:
                validation = Validation(None, f"rejected by plugin: {reason}", format_ok=True)
            proposal.validation = validation
        return proposals

    def _validate(self, proposals: list[Proposal], stats: StepStats) -> list[Validation]:
        """The environment's validation of each generated proposal (split over the ranks)."""
        generated = [p for p in proposals if p.sample.finish_reason != PROMPT_TOO_LONG]
        started = time.perf_counter()
        checked = self.group.map(
            lambda chosen: self.env.validate([p.prompt for p in chosen], [p.response for p in chosen]),
            generated,
        ) if generated else []
        stats.add_time("validation", started)
        if len(checked) != len(generated):
            raise RuntimeError(
                f"{self.env.name!r}.validate returned {len(checked)} results for {len(generated)} proposals"
            )
        by_proposal = dict(zip(map(id, generated), checked))
        validations = [by_proposal.get(id(p), PROMPT_TOO_LONG_VALIDATION) for p in proposals]
        for proposal, validation in zip(proposals, validations):
            if validation.valid:
                assert validation.task is not None
                if validation.task.task_type != proposal.task_type:
                    raise RuntimeError(
                        f"{self.env.name!r}.validate turned a {proposal.task_type!r} proposal into a "
                        f"{validation.task.task_type!r} task; environments must keep the task type"
                    )
        return validations

    def accept(self, step: int, stats: StepStats, proposals: list[Proposal]) -> None:
        """Reviewing plugins read ``proposals``; the valid ones no review dropped enter
        their buffer (held-out tasks excepted) and the accepted/rejected hooks run."""
        self._review(
            stats, proposals,
            [ReviewItem(step, PROPOSE, p.task_type, p.response, trained=step > 0) for p in proposals],
        )
        for proposal in proposals:
            validation = proposal.validation
            if validation.valid and proposal.review.drop:
                self.pm.hook.absolutezero_task_rejected(
                    task_type=proposal.task_type, response=proposal.response,
                    reason="dropped by review: " + ", ".join(f.category for f in proposal.review.flags),
                    step=step,
                )
            elif validation.valid:
                assert validation.task is not None
                if validation.task.key() not in self.held_out:
                    proposal.new = self.buffers.add(validation.task, step)
                self.pm.hook.absolutezero_task_accepted(task=validation.task, step=step)
            else:
                self.pm.hook.absolutezero_task_rejected(
                    task_type=proposal.task_type, response=proposal.response,
                    reason=validation.reason or "invalid", step=step,
                )

    def _review(self, stats: StepStats, owners: Sequence[Any], items: list[ReviewItem]) -> None:
        """Reviewing plugins read ``items``; each owner (proposal or answer) gets its
        review, and the counts and any stop reason go into ``stats``."""
        reviews = self.group.from_main(lambda: collect_reviews(self.pm, items))
        for owner, review in zip(owners, reviews):
            owner.review = review
        stats.reviews.add(reviews, items)

    def solve_greedily(self, tasks: Sequence[Task]) -> list[Verdict]:
        """Greedy answers to ``tasks`` and their verdicts (for held-out evaluation; no
        training, no buffers, trainer rng untouched)."""
        if not tasks:
            return []
        prompts = [self.env.solver_prompt(task) for task in tasks]
        outputs = self.agent.generate(prompts, num_samples=1, greedy=True)
        answers = [Answer(task, prompt, samples[0]) for task, prompt, samples in zip(tasks, prompts, outputs)]
        self._verify(answers, StepStats())
        return [answer.verdict for answer in answers]

    def _generate(self, prompts: Sequence[Prompt], stats: StepStats) -> list[Sample]:
        if not prompts:
            return []
        started = time.perf_counter()
        outputs = self.agent.generate(list(prompts), num_samples=1, greedy=False)
        stats.add_time("generation", started)
        if len(outputs) != len(prompts) or any(len(samples) != 1 for samples in outputs):
            raise RuntimeError(
                f"agent.generate returned {[len(s) for s in outputs]} samples for {len(prompts)} "
                "prompts with num_samples=1; an Agent must return one list of num_samples per prompt"
            )
        chosen = [samples[0] for samples in outputs]
        stats.generated_tokens += sum(len(sample.completion_ids) for sample in chosen)
        stats.prompts_dropped += sum(sample.finish_reason == PROMPT_TOO_LONG for sample in chosen)
        return chosen

    def _solve(self, step: int, proposals: list[Proposal], stats: StepStats) -> list[Answer]:
        """Learnability rollouts for valid proposals and the solve batch, in one generate."""
        n = self.settings.learnability_samples
        rollouts: list[tuple[Proposal, Task, Prompt]] = []
        for proposal in proposals:
            task = proposal.validation.task
            if task is not None:
                prompt = self.env.solver_prompt(task)
                rollouts.extend((proposal, task, prompt) for _ in range(n))
        batch: list[tuple[Task, Prompt]] = []
        fresh_limit = int(self.settings.solve_batch * self.settings.fresh_share)
        for task_type in self.task_types:
            fresh = [
                p.validation.task for p in proposals
                if p.new and p.task_type == task_type and p.validation.task is not None
            ][:fresh_limit]
            tasks = fresh + self.buffers.sample_for_solving(
                task_type, self.settings.solve_batch - len(fresh), self.rng, self.settings.recency_weight
            )
            batch.extend((task, self.env.solver_prompt(task)) for task in tasks)
        jobs = [(task, prompt) for _, task, prompt in rollouts] + batch
        samples = self._generate([prompt for _, prompt in jobs], stats)
        answers = [Answer(task, prompt, sample) for (task, prompt), sample in zip(jobs, samples)]
        self._verify(answers, stats)
        self._review(stats, answers, [
            ReviewItem(step, SOLVE, a.task.task_type, a.response, trained=i >= len(rollouts))
            for i, a in enumerate(answers)
        ])
        for (proposal, _, _), answer in zip(rollouts, answers):
            proposal.verdicts.append(answer.verdict)
        return answers[len(rollouts):]

    def _verify(self, answers: list[Answer], stats: StepStats) -> None:
        pending: list[Answer] = []
        reasons = self.group.from_main(
            lambda: [plugins.filter_answer(self.pm, a.task, a.response) for a in answers]
        )
        for answer, reason in zip(answers, reasons):
            if answer.sample.finish_reason == PROMPT_TOO_LONG:
                answer.verdict = Verdict(0.0, format_ok=True, reason="prompt over the agent's prompt limit")
            elif reason is None:
                pending.append(answer)
            else:
                answer.verdict = Verdict(0.0, format_ok=False, reason=f"filtered by plugin: {reason}")
        if not pending:
            return
        started = time.perf_counter()
        verdicts = self.group.map(
            lambda chosen: self.env.verify(
                [a.task for a in chosen], [a.prompt for a in chosen], [a.response for a in chosen]
            ),
            pending,
        )
        stats.add_time("verification", started)
        if len(verdicts) != len(pending):
            raise RuntimeError(f"{self.env.name!r}.verify returned {len(verdicts)} verdicts for {len(pending)} answers")
        for answer, verdict in zip(pending, verdicts):
            answer.verdict = verdict

    def _score(
        self, proposals: list[Proposal], answers: list[Answer]
    ) -> tuple[list[Sample], np.ndarray, dict[str, float]]:
        """Rewards (with plugin terms and review penalties), TRR++ advantages over the
        samples no review dropped, and the step's scoring metrics."""
        rewards: list[float] = []
        groups: list[tuple[str, str]] = []
        samples: list[Sample] = []
        bases = [propose_reward(p.validation, p.verdicts, self.rewards) for p in proposals]
        solve_bases = [solve_reward(a.verdict, self.rewards) for a in answers]
        propose_bonus, solve_bonus = self.group.from_main(lambda: (
            [plugins.reward_bonus(self.pm, PROPOSE, p.validation.task, p.response, b) for p, b in zip(proposals, bases)],
            [plugins.reward_bonus(self.pm, SOLVE, a.task, a.response, b) for a, b in zip(answers, solve_bases)],
        ))
        for p, base, bonus in zip(proposals, bases, propose_bonus):
            p.reward = base + bonus + p.review.penalty
            if not p.review.drop and p.sample.finish_reason != PROMPT_TOO_LONG:
                rewards.append(p.reward)
                groups.append((PROPOSE, p.task_type))
                samples.append(p.sample)
        for a, base, bonus in zip(answers, solve_bases, solve_bonus):
            a.reward = base + bonus + a.review.penalty
            if not a.review.drop and a.sample.finish_reason != PROMPT_TOO_LONG:
                rewards.append(a.reward)
                groups.append((SOLVE, a.task.task_type))
                samples.append(a.sample)
        advantages = trrpp_advantages(rewards, groups)
        metrics = scoring_metrics(self.task_types, proposals, answers, rewards, groups, samples, advantages)
        return samples, advantages, metrics
