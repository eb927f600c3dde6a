"""The self-play step and loop: propose, validate, estimate learnability, solve, train.

:class:`SelfPlayTrainer` is environment- and agent-agnostic: it only calls the
:class:`~absolutezero.protocol.Environment` and :class:`~absolutezero.protocol.Agent`
methods, the buffers, rewards, TRR++ and the plugin hooks. One step (``T`` task types,
``B`` = ``propose_batch``, ``S`` = ``solve_batch``, ``n`` = ``learnability_samples``)::

    1. propose   T*B proposer prompts (K references each, drawn with the trainer's rng)
                 -> ONE agent.generate (1 sampled completion each)
    2. validate  ONE env.validate over all proposals -> plugin absolutezero_filter_proposal
                 -> valid tasks enter their buffer (tagged with the step; task_accepted /
                 task_rejected hooks)
    3. solve     T*S tasks: up to ``fresh_share`` of them this step's new valid
                 proposals, the rest drawn from the buffers with recency bias; plus
                 every valid proposal repeated n times (learnability rollouts)
                 -> ONE agent.generate (sampled, never greedy)
                 -> plugin absolutezero_filter_answer -> ONE env.verify
    4. rewards   proposer: format penalty / unlearnable / 1 - p̄ from the n rollouts;
                 solver: correctness; plus plugin absolutezero_reward_terms
    5. TRR++     advantages over all trained samples, groups (role, task type)
    6. update    ONE agent.update(samples, advantages)

Batching every generation of a phase into one call is what makes a step affordable on a
CPU (batch 32 generates ~5x more tokens/s than batch 1), and the n rollouts of one task
are adjacent so the agent can share their prompt's prefill.

**Seeding** (:meth:`SelfPlayTrainer.seed`), as in the paper: before any training the
untrained model proposes until every buffer holds ``seed_size`` distinct valid tasks
beyond the environment's own seeds; these are validated like any proposal.

**Held-out tasks** (:meth:`SelfPlayTrainer.propose_held_out`): a probe set proposed by
the untrained model with its own rng. Its tasks never enter a buffer, even when the
model proposes one of them again later, so the probe measures generalisation, not
memorisation.

**Learnability rollouts are not trained on.** As in the paper, they only estimate p̄ for
the proposer's reward; the solver learns from its solve batch. Training on them would
bias the solver group towards the step's fresh (often trivial or broken) proposals and
double-count tasks whose rewards were already used to score the proposer.

**Consistency.** A step either completes (the agent has been updated and the step
counter advanced) or leaves the trainer as it was before the step: an exception or
Ctrl-C before the update restores the buffers and the rng. Ctrl-C during the update is
held back until the update is finished (the result then has ``interrupted=True``). The
agent's own sampling generator is the one thing an interrupted step cannot rewind.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pluggy
from omegaconf import DictConfig, OmegaConf

from absolutezero import hookspecs, plugins
from absolutezero.buffers import BufferSet
from absolutezero.checkpoint import defer_keyboard_interrupt
from absolutezero.config import ConfigError, SelfPlayConfig, did_you_mean
from absolutezero.distributed import Group
from absolutezero.metrics import (
    group_prefix,
    mean_or_none,
    proposer_metrics,
    sample_metrics,
    solver_metrics,
)
from absolutezero.protocol import PROMPT_TOO_LONG, PROPOSE, SOLVE, Agent, Environment, Prompt, Sample, Task, Validation, Verdict
from absolutezero.review import NO_REVIEW, Review, ReviewItem, collect_reviews, flag_metrics, merge_counts
from absolutezero.rewards import PAPER, RewardScheme, propose_reward, solve_reward
from absolutezero.trrpp import advantage_stats, stats_metrics, trrpp_advantages

__all__ = ["SelfPlayTrainer", "StepResult"]


@dataclass
class StepResult:
    """What one step (or the seeding stage, ``step == 0``) produced.

    ``metrics`` is the flat mapping documented in :mod:`absolutezero.metrics`;
    ``interrupted`` is True when Ctrl-C arrived during the agent update (the step is
    complete and counted; the caller should save and stop); ``stop`` is a reviewing
    plugin's reason to end the run (the step is complete; save, then stop).
    """

    step: int
    metrics: dict[str, float]
    interrupted: bool = False
    stop: str | None = None


@dataclass
class _StepStats:
    """Seconds per phase and completion tokens generated during one step."""

    times: dict[str, float] = field(
        default_factory=lambda: {"generation": 0.0, "validation": 0.0, "verification": 0.0}
    )
    generated_tokens: int = 0
    prompts_dropped: int = 0  # over the agent's prompt limit: not generated, not trained
    oversight: dict[str, float] = field(default_factory=dict)
    stop: str | None = None

    def add_time(self, phase: str, started: float) -> None:
        self.times[phase] = self.times.get(phase, 0.0) + time.perf_counter() - started


@dataclass
class _Proposal:
    task_type: str
    prompt: Prompt
    sample: Sample
    validation: Validation = field(default_factory=lambda: Validation(None))
    new: bool = False
    verdicts: list[Verdict] = field(default_factory=list)
    reward: float = 0.0
    review: Review = NO_REVIEW

    @property
    def response(self) -> str:
        return self.prompt.prefill + self.sample.text


@dataclass
class _Answer:
    task: Task
    prompt: Prompt
    sample: Sample
    verdict: Verdict = field(default_factory=lambda: Verdict(0.0))
    reward: float = 0.0
    review: Review = NO_REVIEW

    @property
    def response(self) -> str:
        return self.prompt.prefill + self.sample.text


#: A proposal whose prompt was over the agent's limit: nothing was generated to validate.
_PROMPT_TOO_LONG_VALIDATION = Validation(None, "prompt over the agent's prompt limit (not generated)", format_ok=True)


def _empty_plugin_manager() -> pluggy.PluginManager:
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

    def _snapshot(self) -> tuple[dict[str, Any], str, bool]:
        return self.rng.bit_generator.state, self.buffers.to_jsonl(), self.seeded

    def _restore(self, snapshot: tuple[dict[str, Any], str, bool]) -> None:
        rng_state, buffers, seeded = snapshot
        self.rng.bit_generator.state = rng_state
        self.buffers = BufferSet.from_jsonl(buffers, self.buffers.capacity)
        self.seeded = seeded

    # -- the loop ---------------------------------------------------------------------

    def iterate(self, until: int) -> Iterator[StepResult]:
        """Seed if needed (yielding the seeding result as step 0), then step until
        ``step_count == until``, yielding each step's result."""
        if not self.seeded:
            yield self.seed()
        while self.step_count < until:
            yield self.step()

    def seed(self) -> StepResult:
        """Fill the buffers before training: the environment's seed tasks, then rounds of
        proposals by the untrained model (validated, deduplicated, not trained on) until
        every trained task type's buffer holds ``seed_size`` more distinct tasks, or
        ``seed_max_rounds`` rounds have run.

        Returns:
            Step 0's result: ``seed/<t>/valid_rate`` over all seeding proposals,
            ``seed/<t>/tasks`` (distinct tasks added), ``seed/rounds``, buffer sizes, time.
        """
        from tqdm.auto import tqdm

        snapshot = self._snapshot()
        try:
            started = time.perf_counter()
            for task_type in self.buffers.task_types:
                for task in self.env.seed_tasks(task_type):
                    self.buffers.add(task, 0, seed=True)
            base = self.buffers.sizes()
            want = self.settings.seed_size

            def added(task_type: str) -> int:
                return self.buffers.sizes()[task_type] - base[task_type]

            valid: dict[str, list[bool]] = {t: [] for t in self.task_types}
            stats = _StepStats()
            rounds = 0
            with tqdm(total=want * len(self.task_types), desc="seeding", unit="task",
                      disable=not self.progress or want == 0, dynamic_ncols=True) as bar:
                while rounds < self.settings.seed_max_rounds:
                    lacking = [t for t in self.task_types if added(t) < want]
                    if not lacking or stats.stop:
                        break
                    rounds += 1
                    for proposal in self._propose(0, stats, lacking):
                        valid[proposal.task_type].append(proposal.validation.valid)
                    bar.update(sum(min(want, added(t)) for t in self.task_types) - bar.n)
                    bar.set_postfix({t: added(t) for t in self.task_types}, refresh=True)
            metrics: dict[str, float] = {"seed/rounds": float(rounds)}
            for task_type, flags in valid.items():
                if flags:
                    metrics[f"seed/{task_type}/valid_rate"] = float(np.mean(flags))
                metrics[f"seed/{task_type}/tasks"] = float(added(task_type))
            metrics.update(self._buffer_metrics())
            metrics.update(stats.oversight)
            metrics["time/seeding"] = time.perf_counter() - started
        except BaseException:
            self._restore(snapshot)
            raise
        self.seeded = True
        return StepResult(0, metrics, stop=stats.stop)

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

    def propose_held_out(self, per_type: int, seed: int, max_rounds: int) -> dict[str, list[Task]]:
        """Held-out tasks proposed by the current model, validated like any proposal.

        Proposals use their own ``np.random.default_rng(seed)`` for references (the
        trainer's rng is untouched) and are kept only when valid, distinct and not already
        in a buffer. From then on their keys are in :attr:`held_out`, so no buffer (and so
        no training batch) ever holds them. Restore the exclusion on resume with
        :meth:`exclude`.

        Returns:
            Up to ``per_type`` tasks per trained task type (fewer if ``max_rounds`` of
            proposals did not find enough).
        """
        rng = np.random.default_rng(seed)
        found: dict[str, dict[str, Task]] = {t: {} for t in self.task_types}
        for _ in range(max_rounds):
            lacking = [t for t in self.task_types if len(found[t]) < per_type]
            if not lacking:
                break
            for proposal in self._propose(0, _StepStats(), lacking, rng=rng, add=False):
                task = proposal.validation.task
                if task is None or task in self.buffers or len(found[task.task_type]) >= per_type:
                    continue
                found[task.task_type].setdefault(task.key(), task)
        tasks = {t: list(chosen.values()) for t, chosen in found.items()}
        self.exclude(task for chosen in tasks.values() for task in chosen)
        return tasks

    def exclude(self, tasks: Iterator[Task] | Sequence[Task]) -> None:
        """Never add these tasks to a buffer (held-out evaluation tasks)."""
        self.held_out.update(task.key() for task in tasks)

    def solve_greedily(self, tasks: Sequence[Task]) -> list[Verdict]:
        """Greedy answers to ``tasks`` and their verdicts (for held-out evaluation; no
        training, no buffers, trainer rng untouched)."""
        if not tasks:
            return []
        prompts = [self.env.solver_prompt(task) for task in tasks]
        outputs = self.agent.generate(prompts, num_samples=1, greedy=True)
        answers = [_Answer(task, prompt, samples[0]) for task, prompt, samples in zip(tasks, prompts, outputs)]
        self._verify(answers, _StepStats())
        return [answer.verdict for answer in answers]

    def step(self) -> StepResult:
        """One self-play step (seeds first if :meth:`seed` has not run).

        Returns:
            The step's :class:`StepResult`; ``step_count`` has advanced by one.
        """
        if not self.seeded:
            self.seed()
        step = self.step_count + 1
        snapshot = self._snapshot()
        started = time.perf_counter()
        stats = _StepStats()
        try:
            proposals = self._propose(step, stats)
            answers = self._solve(step, proposals, stats)
            samples, advantages, metrics = self._score(proposals, answers)
        except BaseException:
            self._restore(snapshot)
            raise
        update_started = time.perf_counter()
        try:
            with defer_keyboard_interrupt(raise_after=False) as interrupt:
                train_metrics = self.agent.update(samples, list(advantages))
                self.step_count = step
        except BaseException:
            self._restore(snapshot)
            raise
        stats.add_time("update", update_started)
        stats.add_time("step", started)
        metrics.update({f"train/{name}": value for name, value in dict(train_metrics).items()})
        metrics.update({f"time/{name}": value for name, value in stats.times.items()})
        metrics["tokens/generated"] = float(stats.generated_tokens)
        metrics["generation/prompts_dropped"] = float(stats.prompts_dropped)
        metrics.update(self._buffer_metrics())
        metrics.update(stats.oversight)
        return StepResult(step, metrics, interrupted=interrupt.received, stop=stats.stop)

    # -- phases -----------------------------------------------------------------------

    def _generate(self, prompts: Sequence[Prompt], stats: _StepStats) -> list[Sample]:
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

    def _propose(
        self,
        step: int,
        stats: _StepStats,
        task_types: Sequence[str] | None = None,
        rng: np.random.Generator | None = None,
        add: bool = True,
    ) -> list[_Proposal]:
        """Generate, validate and filter one batch of proposals (``propose_batch`` per task
        type); with ``add``, valid tasks enter their buffers (held-out ones excepted) and
        the accepted/rejected hooks run."""
        rng = self.rng if rng is None else rng
        prompts: list[tuple[str, Prompt]] = []
        for task_type in self.task_types if task_types is None else task_types:
            for _ in range(self.settings.propose_batch):
                references = self.buffers.sample_references(
                    self.env.reference_types(task_type), self.settings.references, rng
                )
                prompts.append((task_type, self.env.proposer_prompt(task_type, references, rng)))
        samples = self._generate([prompt for _, prompt in prompts], stats)
        proposals = [_Proposal(t, prompt, sample) for (t, prompt), sample in zip(prompts, samples)]
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
        validations = [by_proposal.get(id(p), _PROMPT_TOO_LONG_VALIDATION) for p in proposals]
        for proposal, validation in zip(proposals, validations):
            if validation.valid:
                assert validation.task is not None
                if validation.task.task_type != proposal.task_type:
                    raise RuntimeError(
                        f"{self.env.name!r}.validate turned a {proposal.task_type!r} proposal into a "
                        f"{validation.task.task_type!r} task; environments must keep the task type"
                    )
        reasons = self.group.from_main(lambda: [
            plugins.filter_proposal(self.pm, v.task, p.response) if v.valid else None
            for p, v in zip(proposals, validations)
        ])
        for proposal, validation, reason in zip(proposals, validations, reasons):
            if reason is not None:
                validation = Validation(None, f"rejected by plugin: {reason}", format_ok=True)
            proposal.validation = validation
        if not add:
            return proposals
        self._review(
            step, stats, proposals,
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
        return proposals

    def _review(self, step: int, stats: _StepStats, owners: Sequence[Any], items: list[ReviewItem]) -> None:
        """Reviewing plugins read ``items``; each owner (proposal or answer) gets its
        review, and the counts and any stop reason go into ``stats``."""
        reviews = self.group.from_main(lambda: collect_reviews(self.pm, items))
        for owner, review in zip(owners, reviews):
            owner.review = review
        merge_counts(stats.oversight, flag_metrics(reviews, items))
        if stats.stop is None:
            stats.stop = next((r.stop for r in reviews if r.stop), None)

    def _solve(self, step: int, proposals: list[_Proposal], stats: _StepStats) -> list[_Answer]:
        """Learnability rollouts for valid proposals and the solve batch, in one generate."""
        n = self.settings.learnability_samples
        rollouts: list[tuple[_Proposal, Task, Prompt]] = []
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
        answers = [_Answer(task, prompt, sample) for (task, prompt), sample in zip(jobs, samples)]
        self._verify(answers, stats)
        self._review(step, stats, answers, [
            ReviewItem(step, SOLVE, a.task.task_type, a.response, trained=i >= len(rollouts))
            for i, a in enumerate(answers)
        ])
        for (proposal, _, _), answer in zip(rollouts, answers):
            proposal.verdicts.append(answer.verdict)
        return answers[len(rollouts):]

    def _verify(self, answers: list[_Answer], stats: _StepStats) -> None:
        pending: list[_Answer] = []
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
        self, proposals: list[_Proposal], answers: list[_Answer]
    ) -> tuple[list[Sample], np.ndarray, dict[str, float]]:
        """Rewards (with plugin terms and review penalties), TRR++ advantages over the
        samples no review dropped, and the step's metrics."""
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
        metrics = stats_metrics(advantage_stats(rewards, groups))
        for role in (PROPOSE, SOLVE):
            for task_type in self.task_types:
                chosen = [i for i, g in enumerate(groups) if g == (role, task_type)]
                metrics.update(sample_metrics(
                    group_prefix(role, task_type),
                    [float(advantages[i]) for i in chosen],
                    [len(samples[i].completion_ids) for i in chosen],
                    [samples[i].finish_reason == "length" for i in chosen],
                ))
        for task_type in self.task_types:
            mine = [p for p in proposals if p.task_type == task_type]
            metrics.update(proposer_metrics(
                group_prefix(PROPOSE, task_type),
                [p.validation.valid for p in mine], [p.validation.format_ok for p in mine],
                [p.new for p in mine],
                [float(np.mean([v.correct for v in p.verdicts])) for p in mine if p.validation.valid],
            ))
            solved = [a for a in answers if a.task.task_type == task_type]
            metrics.update(solver_metrics(
                group_prefix(SOLVE, task_type),
                [a.verdict.correct for a in solved], [a.verdict.format_ok for a in solved],
            ))
        overall = {
            "overall/valid_rate": mean_or_none(p.validation.valid for p in proposals),
            "overall/solve_rate": mean_or_none(a.verdict.correct for a in answers),
            "overall/propose_reward_mean": mean_or_none(p.reward for p in proposals),
            "overall/solve_reward_mean": mean_or_none(a.reward for a in answers),
        }
        metrics.update({name: value for name, value in overall.items() if value is not None})
        metrics["learnability/rollouts"] = float(sum(len(p.verdicts) for p in proposals))
        metrics["tokens/trained"] = float(sum(len(s.prompt_ids) + len(s.completion_ids) for s in samples))
        return samples, advantages, metrics

    def _buffer_metrics(self) -> dict[str, float]:
        return {f"buffer/{t}/size": float(size) for t, size in self.buffers.sizes().items()}
