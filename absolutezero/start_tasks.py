"""The proposal rounds that give a run its starting tasks: seed buffers and probe set.

Why one pass for both: the seed buffers and the held-out probe set are each proposed by
the untrained model before any training, so the same generation calls can serve both.
Proposing them in one pass, in few big rounds of ``selfplay.seed_batch`` prompts per task
type (144 code-environment prompts, one generation batch, where separate passes ran
rounds of 4 per type), is what brings a CPU run's time to its first step down to a few
minutes: a round decodes until its longest proposal ends, and its last calls, with a
handful of rows left, cost almost what full ones do, so each round saved saves a tail.

Routing: each valid, distinct proposal not already in a buffer goes either to the probe
set or, through :meth:`SelfPlayTrainer.accept` (reviews, hooks), to its buffer. A task
goes to the probe set while its type's probe set is the less filled of the two (as a
fraction of its target), so both fill at the same pace and neither takes the easy
tasks of early rounds. Probe tasks are excluded from every buffer at once
(``trainer.exclude``), so a later copy of one can never be trained on. Which proposals
become probe tasks depends only on the proposals, in order, so the split is as
reproducible as the proposals themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from absolutezero.protocol import Task
from absolutezero.step_records import Proposal, StepStats

if TYPE_CHECKING:
    from absolutezero.selfplay import SelfPlayTrainer

__all__ = ["StartTasks", "propose_start_tasks"]


@dataclass
class StartTasks:
    """What the rounds produced: per trained task type the validity of every proposal,
    the tasks added to the buffers beyond what they held, the probe tasks; and the
    number of rounds run."""

    valid: dict[str, list[bool]] = field(default_factory=dict)
    added: dict[str, int] = field(default_factory=dict)
    probe: dict[str, list[Task]] = field(default_factory=dict)
    rounds: int = 0


def propose_start_tasks(
    trainer: SelfPlayTrainer,
    rng: np.random.Generator,
    stats: StepStats,
    *,
    seed_size: int,
    seed_rounds: int,
    probe_per_type: int,
    probe_rounds: int,
    progress: Any = None,
) -> StartTasks:
    """Rounds of proposals until every trained task type's buffer gained ``seed_size``
    distinct valid tasks (within ``seed_rounds`` rounds) and its probe set holds
    ``probe_per_type`` (within ``probe_rounds``), or a reviewing plugin asks to stop.

    ``rng`` draws the prompts' references and choices. ``progress`` (a tqdm bar or
    None) is advanced to the number of tasks found so far.

    With ``seed_size`` or ``seed_rounds`` 0 (a probe set for buffers that came from a
    file) nothing enters a buffer and no review runs.

    Returns:
        The :class:`StartTasks`; the buffers hold the accepted tasks and
        ``trainer.held_out`` the probe tasks' keys.
    """
    types = list(trainer.task_types)
    base = trainer.buffers.sizes()
    found: dict[str, dict[str, Task]] = {t: {} for t in types}
    result = StartTasks(valid={t: [] for t in types})

    def added(task_type: str) -> int:
        return trainer.buffers.sizes()[task_type] - base[task_type]

    def lacking(round_index: int) -> list[str]:
        return [
            t for t in types
            if (round_index < seed_rounds and added(t) < seed_size)
            or (round_index < probe_rounds and len(found[t]) < probe_per_type)
        ]

    batch = int(trainer.settings.seed_batch)
    seeding = seed_size > 0 and seed_rounds > 0
    while not stats.reviews.stop:
        wanted = lacking(result.rounds)
        if not wanted:
            break
        proposals = trainer.propose(wanted, rng, stats, per_type=batch)
        result.rounds += 1
        to_buffers: list[Proposal] = []
        pending = {t: 0 for t in types}  # valid new tasks routed to a buffer this round
        for proposal in proposals:
            result.valid[proposal.task_type].append(proposal.validation.valid)
            task = proposal.validation.task
            if task is not None and _takes_for_probe(
                task, trainer, found, pending, added, seed_size, probe_per_type,
                seed_open=result.rounds <= seed_rounds, probe_open=result.rounds <= probe_rounds,
            ):
                found[task.task_type][task.key()] = task
                trainer.exclude([task])
                continue
            if task is not None and task not in trainer.buffers:
                pending[task.task_type] += 1
            to_buffers.append(proposal)
        if seeding:  # a probe-only pass stores nothing (the buffers came from elsewhere)
            trainer.accept(0, stats, to_buffers)
        if progress is not None:
            done = sum(min(seed_size, added(t)) + min(probe_per_type, len(found[t])) for t in types)
            progress.update(done - progress.n)
            progress.set_postfix({t: f"{added(t)}+{len(found[t])}" for t in types}, refresh=True)
    result.added = {t: added(t) for t in types}
    result.probe = {t: list(chosen.values()) for t, chosen in found.items()}
    return result


def _takes_for_probe(
    task: Task, trainer: SelfPlayTrainer, found: dict[str, dict[str, Task]], pending: dict[str, int],
    added: Any, seed_size: int, probe_per_type: int, *, seed_open: bool, probe_open: bool,
) -> bool:
    """Whether this valid task becomes a probe task (see the module docstring)."""
    chosen = found[task.task_type]
    if not probe_open or len(chosen) >= probe_per_type:
        return False
    if task.key() in chosen or task.key() in trainer.held_out or task in trainer.buffers:
        return False
    seeded = added(task.task_type) + pending[task.task_type]
    if not seed_open or seeded >= seed_size:
        return True
    return len(chosen) / probe_per_type <= seeded / seed_size
