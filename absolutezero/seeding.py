"""Where a run's task buffers start from: a checkpoint, a seed file, or fresh seeding.

:func:`start_buffers` is the one place that decides, in this order:

1. **a resumed checkpoint**: the trainer's state (buffers included) was restored from it
   (``trainer.seeded``); nothing to do and no step-0 record, the run already has one;
2. **a seed file** (``seed_buffers=``): an earlier run's ``seed_buffers.jsonl``, taken as
   it is, so that runs compared with each other start from the same tasks;
3. **fresh seeding** (:func:`seed_by_proposing`), as in the paper: before any training
   the untrained model proposes until every buffer holds ``seed_size`` distinct valid
   tasks beyond the environment's own seeds; these are validated like any proposal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from absolutezero.buffers import BufferSet
from absolutezero.config import ConfigError
from absolutezero.step_metrics import buffer_metrics
from absolutezero.step_records import StepResult, StepStats

if TYPE_CHECKING:
    from absolutezero.selfplay import SelfPlayTrainer

__all__ = ["SEED_BUFFERS_FILE", "Start", "seed_by_proposing", "start_buffers"]

#: The seed buffers a run saves in its folder (what ``seed_buffers=`` reads back).
SEED_BUFFERS_FILE = "seed_buffers.jsonl"


@dataclass
class Start:
    """Where the buffers came from (``"checkpoint"``, ``"file"`` or ``"seeding"``), the
    step-0 metrics (``None`` for a checkpoint) and a reviewing plugin's stop reason."""

    source: str
    metrics: dict[str, float] | None
    stop: str | None = None


def _silent(message: str) -> None:
    """The default ``announce``: say nothing."""


def start_buffers(
    trainer: SelfPlayTrainer, seed_file: str | None, announce: Callable[[str], None] = _silent
) -> Start:
    """Give ``trainer`` its starting buffers from the first source that applies (see the
    module docstring); ``announce`` receives one line saying what is being done.

    Raises:
        ConfigError: ``seed_file`` cannot be read, is not a buffer file, or holds other
            task types than the trainer needs.
    """
    if trainer.seeded:
        return Start("checkpoint", None)
    if seed_file:
        path = Path(str(seed_file)).expanduser()
        try:
            buffers = BufferSet.load(path, trainer.buffers.capacity)
        except (OSError, ValueError) as error:
            raise ConfigError(f"seed_buffers={seed_file}: cannot use it: {error}") from None
        trainer.use_seed_buffers(buffers)
        metrics = {"seed/reused": 1.0, **buffer_metrics(buffers)}
        metrics.update(trainer.plugin_metrics(0, metrics))
        announce(f"seed buffers taken from {path} (no seeding)")
        return Start("file", metrics)
    announce("seeding the task buffers (no training) ...")
    result = seed_by_proposing(trainer)
    return Start("seeding", result.metrics, result.stop)


def seed_by_proposing(trainer: SelfPlayTrainer) -> StepResult:
    """Fill the buffers before training: the environment's seed tasks, then rounds of
    proposals by the untrained model (validated, reviewed, deduplicated, not trained on)
    until every trained task type's buffer holds ``seed_size`` more distinct tasks, or
    ``seed_max_rounds`` rounds have run. On an error the trainer is left as it was.

    Returns:
        Step 0's result: ``seed/<t>/valid_rate`` over all seeding proposals,
        ``seed/<t>/tasks`` (distinct tasks added), ``seed/rounds``, buffer sizes, time.
    """
    from tqdm.auto import tqdm

    settings = trainer.settings
    rollback = trainer.rollback_point()
    try:
        started = time.perf_counter()
        buffers = trainer.buffers
        for task_type in buffers.task_types:
            for task in trainer.env.seed_tasks(task_type):
                buffers.add(task, 0, seed=True)
        base = buffers.sizes()
        want = settings.seed_size

        def added(task_type: str) -> int:
            return buffers.sizes()[task_type] - base[task_type]

        valid: dict[str, list[bool]] = {t: [] for t in trainer.task_types}
        stats = StepStats()
        rounds = 0
        with tqdm(total=want * len(trainer.task_types), desc="seeding", unit="task",
                  disable=not trainer.progress or want == 0, dynamic_ncols=True) as bar:
            while rounds < settings.seed_max_rounds:
                lacking = [t for t in trainer.task_types if added(t) < want]
                if not lacking or stats.reviews.stop:
                    break
                rounds += 1
                proposals = trainer.propose(lacking, trainer.rng, stats)
                trainer.accept(0, stats, proposals)
                for proposal in proposals:
                    valid[proposal.task_type].append(proposal.validation.valid)
                bar.update(sum(min(want, added(t)) for t in trainer.task_types) - bar.n)
                bar.set_postfix({t: added(t) for t in trainer.task_types}, refresh=True)
        metrics: dict[str, float] = {"seed/rounds": float(rounds)}
        for task_type, flags in valid.items():
            if flags:
                metrics[f"seed/{task_type}/valid_rate"] = float(np.mean(flags))
            metrics[f"seed/{task_type}/tasks"] = float(added(task_type))
        metrics.update(trainer.state_metrics(stats))
        metrics["time/seeding"] = time.perf_counter() - started
    except BaseException:
        rollback.undo()
        raise
    rollback.keep()
    trainer.seeded = True
    metrics.update(trainer.plugin_metrics(0, metrics))
    return StepResult(0, metrics, stop=stats.reviews.stop)
