"""Where a run's starting tasks come from: a checkpoint, a seed file, the start cache,
or fresh seeding.

:func:`start_buffers` is the one place that decides, in this order:

1. **a resumed checkpoint**: the trainer's state (buffers included) was restored from it
   (``trainer.seeded``); nothing to do and no step-0 record, the run already has one;
2. **a seed file** (``seed_buffers=``): an earlier run's ``seed_buffers.jsonl``, taken as
   it is, so that runs compared with each other start from the same tasks (the probe
   set, if wanted, is proposed after it);
3. **the start cache** (``reuse_start``, :mod:`absolutezero.start_cache`): the seed
   buffers and probe set an earlier run with the same seed and settings proposed;
4. **fresh seeding** (:func:`seed_and_probe`), as in the paper: before any training the
   untrained model proposes until every buffer holds ``seed_size`` distinct valid tasks
   beyond the environment's own seeds, validated like any proposal; the probe set is
   set aside from the same rounds (:mod:`absolutezero.start_tasks`).
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
from absolutezero.protocol import Task
from absolutezero.start_cache import CachedStart, StartCache  # noqa: F401 (CachedStart: annotations)
from absolutezero.start_tasks import propose_start_tasks
from absolutezero.step_metrics import buffer_metrics
from absolutezero.step_records import StepResult, StepStats

if TYPE_CHECKING:
    from absolutezero.selfplay import SelfPlayTrainer

__all__ = ["SEED_BUFFERS_FILE", "Start", "seed_and_probe", "seed_by_proposing", "start_buffers"]

#: The seed buffers a run saves in its folder (what ``seed_buffers=`` reads back).
SEED_BUFFERS_FILE = "seed_buffers.jsonl"


@dataclass
class Start:
    """Where the buffers came from (``"checkpoint"``, ``"file"``, ``"cache"`` or
    ``"seeding"``), the step-0 metrics (``None`` for a checkpoint), a reviewing plugin's
    stop reason, and the probe tasks found on the way (``None``: none were asked for,
    or the run folder has them) with, from a cache entry, the untrained model's verdict
    on each (else ``None``: the caller scores them)."""

    source: str
    metrics: dict[str, float] | None
    stop: str | None = None
    probe: dict[str, list[Task]] | None = None
    probe_start: list[bool] | None = None


def _silent(message: str) -> None:
    """The default ``announce``: say nothing."""


def start_buffers(
    trainer: SelfPlayTrainer,
    seed_file: str | None,
    announce: Callable[[str], None] = _silent,
    *,
    probe_per_type: int = 0,
    probe_rounds: int = 0,
    probe_seed: int = 0,
    cache: StartCache | None = None,
) -> Start:
    """Give ``trainer`` its starting buffers from the first source that applies (see the
    module docstring) and, when ``probe_per_type`` > 0, its probe tasks; ``announce``
    receives one line saying what is being done.

    ``cache`` (fresh starts only): read the buffers and probe set from it when it has
    them (the caller stores a fresh start in it, with its step-0 probe scores). ``probe_seed`` seeds the references of a
    probe pass after a seed file (fresh seeding proposes the probe set in its own rounds).

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
        probe = None
        if probe_per_type:
            from absolutezero.probe import propose_held_out

            announce("proposing the held-out probe set (never trained on) ...")
            probe = propose_held_out(trainer, probe_per_type, seed=probe_seed, max_rounds=probe_rounds)
        return Start("file", metrics, probe=probe)
    cached = trainer.group.from_main(cache.read) if cache is not None else None
    if cached is not None and (cached.probe is not None) == bool(probe_per_type):
        return _from_cache(trainer, cached, cache, announce)
    if probe_per_type:
        announce("seeding the task buffers and proposing the held-out probe set (no training) ...")
    else:
        announce("seeding the task buffers (no training) ...")
    result, probe = seed_and_probe(trainer, probe_per_type, probe_rounds)
    return Start("seeding", result.metrics, result.stop, probe if probe_per_type else None)


def _from_cache(
    trainer: SelfPlayTrainer, cached: CachedStart, cache: StartCache, announce: Callable[[str], None]
) -> Start:
    """Start from a cache entry: its buffers, its probe set, its seeding figures."""
    from absolutezero.probe import ProbeSet

    source = f"{cache.folder} (cache)"
    try:
        buffers = BufferSet.from_jsonl(cached.buffers, trainer.buffers.capacity, source=source)
        probe = (
            ProbeSet.from_jsonl(cached.probe, trainer.env, trainer.task_types, source) if cached.probe is not None else None
        )
    except ValueError as error:
        raise ConfigError(f"the start cache {cache.folder} is unusable ({error}); delete it or set reuse_start=false") from None
    trainer.use_seed_buffers(buffers)
    if probe is not None:
        trainer.exclude(probe.all_tasks())
    metrics = {**cached.metrics, "seed/cached": 1.0, **buffer_metrics(buffers)}
    metrics.update(trainer.plugin_metrics(0, metrics))
    announce(f"seed buffers and probe set reused from {cache.folder} (same seed and settings; reuse_start=false proposes anew)")
    return Start("cache", metrics, probe=probe.tasks if probe is not None else None,
                 probe_start=cached.probe_start if probe is not None else None)


def seed_by_proposing(trainer: SelfPlayTrainer) -> StepResult:
    """Fill the buffers before training (no probe set); see :func:`seed_and_probe`."""
    return seed_and_probe(trainer, 0, 0)[0]


def seed_and_probe(
    trainer: SelfPlayTrainer, probe_per_type: int, probe_rounds: int
) -> tuple[StepResult, dict[str, list[Task]]]:
    """Fill the buffers before training and propose the probe set, in one pass.

    The environment's seed tasks go in first; then rounds of proposals by the untrained
    model (validated, reviewed, deduplicated, not trained on; see
    :mod:`absolutezero.start_tasks`) run until every trained task type's buffer holds
    ``seed_size`` more distinct tasks (within ``seed_max_rounds`` rounds) and
    ``probe_per_type`` probe tasks are set aside (within ``probe_rounds``). On an error
    the trainer is left as it was.

    Returns:
        Step 0's result (``seed/<t>/valid_rate`` over all proposals, ``seed/<t>/tasks``
        added to the buffer, ``seed/rounds``, buffer sizes, ``time/seeding``) and the
        probe tasks per task type.
    """
    from tqdm.auto import tqdm

    settings = trainer.settings
    rollback = trainer.rollback_point()
    held_out = set(trainer.held_out)
    try:
        started = time.perf_counter()
        for task_type in trainer.buffers.task_types:
            for task in trainer.env.seed_tasks(task_type):
                trainer.buffers.add(task, 0, seed=True)
        stats = StepStats()
        total = (settings.seed_size + probe_per_type) * len(trainer.task_types)
        with tqdm(total=total, desc="seeding", unit="task", disable=not trainer.progress or total == 0,
                  dynamic_ncols=True) as bar:
            found = propose_start_tasks(
                trainer, trainer.rng, stats, seed_size=settings.seed_size, seed_rounds=settings.seed_max_rounds,
                probe_per_type=probe_per_type, probe_rounds=probe_rounds, progress=bar,
            )
        metrics: dict[str, float] = {"seed/rounds": float(found.rounds)}
        for task_type, flags in found.valid.items():
            if flags:
                metrics[f"seed/{task_type}/valid_rate"] = float(np.mean(flags))
            metrics[f"seed/{task_type}/tasks"] = float(found.added[task_type])
        metrics.update(trainer.state_metrics(stats))
        metrics["time/seeding"] = time.perf_counter() - started
    except BaseException:
        rollback.undo()
        trainer.held_out = held_out
        raise
    rollback.keep()
    trainer.seeded = True
    metrics.update(trainer.plugin_metrics(0, metrics))
    return StepResult(0, metrics, stop=stats.reviews.stop), found.probe
