"""The held-out probe set: did self-play make the solver better on tasks it never trained on?

The probe tasks are proposed by the *untrained* model in a pass of its own (own rng seed),
validated like every proposal, and kept out of every buffer for the whole run (the
trainer's ``held_out`` keys), so no training batch can contain them, even when the model
proposes one of them again later. Scoring is greedy, so the curve moves only when the
policy's most likely answer changes, not with sampling noise.

Why self-proposed and not a benchmark: benchmarks are evaluation-only and never enter the
training path; the probe measures in-distribution generalisation of the self-play tasks
themselves, beside the out-of-distribution CruxEval scores (``eval.every``).

File: ``probe_set.jsonl`` in the run folder, one serialised task per line; a resumed run
reads it back and re-applies the exclusion. ``probe_start.json`` beside it keeps the
untrained model's verdict on each task, so every later score is also *paired* with the
start's (tasks gained and lost, exact sign-test p): per-task pairs resolve a change that
two accuracies with overlapping intervals cannot.

:func:`propose_held_out` proposes the set with the trainer's proposal phase (no review,
no buffer, no hooks), :class:`ProbeSet` keeps, saves and scores it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from absolutezero.intervals import wilson_interval
from absolutezero.atomic import atomic_write_text
from absolutezero.paired import sign_test_p
from absolutezero.config import ConfigError
from absolutezero.protocol import Environment, Task
from absolutezero.step_records import StepStats

if TYPE_CHECKING:
    from absolutezero.selfplay import SelfPlayTrainer

__all__ = ["PROBE_FILE", "PROBE_SEED_OFFSET", "PROBE_START_FILE", "ProbeSet", "propose_held_out"]

PROBE_FILE = "probe_set.jsonl"
#: The untrained model's verdict per probe task (see :meth:`ProbeSet.save_start`).
PROBE_START_FILE = "probe_start.json"
#: Added to the run's seed for the probe pass's rng: far from it, so that the probe
#: pass does not repeat the seeding pass.
PROBE_SEED_OFFSET = 1_000_003


def propose_held_out(
    trainer: SelfPlayTrainer, per_type: int, seed: int, max_rounds: int
) -> dict[str, list[Task]]:
    """Held-out tasks proposed by the trainer's current model, validated like any proposal,
    when the buffers came from elsewhere (a seed file); fresh seeding proposes the probe
    set in its own rounds (:mod:`absolutezero.start_tasks`).

    Proposals use their own ``np.random.default_rng(seed)`` for references (the
    trainer's rng is untouched) and are kept only when valid, distinct and not already
    in a buffer. From then on their keys are in ``trainer.held_out``, so no buffer (and
    so no training batch) ever holds them. Restore the exclusion on resume with
    ``trainer.exclude``.

    Returns:
        Up to ``per_type`` tasks per trained task type (fewer if ``max_rounds`` rounds of
        ``selfplay.seed_batch`` proposals per lacking type did not find enough).
    """
    from absolutezero.start_tasks import propose_start_tasks

    found = propose_start_tasks(
        trainer, np.random.default_rng(seed), StepStats(), seed_size=0, seed_rounds=0,
        probe_per_type=per_type, probe_rounds=max_rounds,
    )
    return found.probe


class ProbeSet:
    """Held-out tasks per task type, and their greedy scoring.

    ``start``, when known, is the untrained model's verdict (correct or not) on each task,
    in :meth:`all_tasks` order; scores are then paired with it. ``last_correct`` holds
    the verdicts of the latest :meth:`score` (the caller makes the step-0 ones ``start``).
    """

    def __init__(self, tasks: Mapping[str, list[Task]], start: Sequence[bool] | None = None) -> None:
        self.tasks = {task_type: list(chosen) for task_type, chosen in tasks.items()}
        self.start: list[bool] | None = None
        self.last_correct: list[bool] | None = None
        if start is not None:
            self.set_start(start)

    def set_start(self, correct: Sequence[bool], source: str = "the start verdicts") -> None:
        """Take ``correct`` as the untrained model's verdicts.

        Raises:
            ConfigError: not one verdict per task (``source`` names where they came from).
        """
        if len(correct) != len(self):
            raise ConfigError(
                f"{source} hold {len(correct)} verdicts for {len(self)} probe tasks; they belong to another "
                "probe set (delete them, or the run folder's probe files, to score it anew)"
            )
        self.start = [bool(value) for value in correct]

    def save_start(self, path: str | Path) -> None:
        """Write :attr:`start` atomically as JSON (``{"correct": [0, 1, ...]}``)."""
        if self.start is None:
            raise ValueError("no start verdicts to save: score the untrained model first")
        atomic_write_text(Path(path), json.dumps({"correct": [int(value) for value in self.start]}) + "\n")

    def load_start(self, path: str | Path) -> None:
        """Read :meth:`save_start`'s file into :attr:`start`.

        Raises:
            ConfigError: unreadable or malformed file, or not one verdict per task.
        """
        path = Path(path)
        try:
            correct = json.loads(path.read_text(encoding="utf-8"))["correct"]
            if not isinstance(correct, list) or any(value not in (0, 1) for value in correct):
                raise ValueError("'correct' is not a list of 0/1")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"cannot read the probe's start verdicts {path}: {error}") from None
        self.set_start(correct, source=str(path))

    def __len__(self) -> int:
        return sum(len(chosen) for chosen in self.tasks.values())

    def all_tasks(self) -> list[Task]:
        return [task for chosen in self.tasks.values() for task in chosen]

    def to_jsonl(self, env: Environment) -> str:
        """The set as JSONL text, one ``env.serialize_task`` per line."""
        lines = [json.dumps(env.serialize_task(task), sort_keys=True, ensure_ascii=False) for task in self.all_tasks()]
        return "".join(line + "\n" for line in lines)

    def save(self, path: str | Path, env: Environment) -> None:
        """Write the set atomically as JSONL (see :meth:`to_jsonl`)."""
        atomic_write_text(Path(path), self.to_jsonl(env))

    @classmethod
    def load(cls, path: str | Path, env: Environment, task_types: tuple[str, ...]) -> "ProbeSet":
        """Read a saved set back.

        Raises:
            ConfigError: unreadable file or a line that is not a task of this environment
                (the message names the file and line).
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"cannot read the probe set {path}: {error}") from None
        return cls.from_jsonl(text, env, task_types, source=str(path))

    @classmethod
    def from_jsonl(
        cls, text: str, env: Environment, task_types: tuple[str, ...], source: str = "<probe set>"
    ) -> "ProbeSet":
        """Parse :meth:`to_jsonl` text; ``source`` names it in error messages.

        Raises:
            ConfigError: a line that is not a task of this environment.
        """
        tasks: dict[str, list[Task]] = {t: [] for t in task_types}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                task = env.deserialize_task(json.loads(line))
            except (ValueError, TypeError) as error:
                raise ConfigError(f"{source}:{number}: not a task of environment {env.name!r}: {error}") from None
            tasks.setdefault(task.task_type, []).append(task)
        return cls(tasks)

    def score(self, solve) -> dict[str, float]:  # solve: Sequence[Task] -> list[Verdict]
        """Greedy accuracy per task type and overall.

        ``solve`` is :meth:`SelfPlayTrainer.solve_greedily` (one batched call for all
        tasks).

        Returns:
            ``probe/<t>/size`` always (so an empty probe set is visible in the metrics);
            ``probe/<t>/accuracy``, ``probe/<t>/format_ok_rate`` and
            ``probe/overall/accuracy`` where there are tasks, each accuracy with the
            bounds of its 95% Wilson interval (``.../accuracy_ci_low``, ``..._ci_high``);
            with :attr:`start` known, per type and overall the tasks ``.../gained`` and
            ``.../lost`` since the start and the exact two-sided sign-test
            ``.../sign_test_p`` of that difference.
        """
        metrics = {f"probe/{task_type}/size": float(len(chosen)) for task_type, chosen in self.tasks.items()}
        tasks = self.all_tasks()
        if not tasks:
            self.last_correct = []
            return metrics
        verdicts = solve(tasks)
        correct = [bool(v.correct) for v in verdicts]
        offset = 0
        for task_type, chosen in self.tasks.items():
            mine = slice(offset, offset + len(chosen))
            offset += len(chosen)
            if not chosen:
                continue
            metrics.update(_accuracy(f"probe/{task_type}", correct[mine]))
            metrics[f"probe/{task_type}/format_ok_rate"] = float(np.mean([v.format_ok for v in verdicts[mine]]))
            if self.start is not None:
                metrics.update(_paired(f"probe/{task_type}", self.start[mine], correct[mine]))
        metrics.update(_accuracy("probe/overall", correct))
        if self.start is not None:
            metrics.update(_paired("probe/overall", self.start, correct))
        self.last_correct = correct
        return metrics


def _accuracy(prefix: str, correct: list[bool]) -> dict[str, float]:
    """The accuracy of ``correct`` with its 95% Wilson interval."""
    low, high = wilson_interval(sum(correct), len(correct))
    return {
        f"{prefix}/accuracy": float(np.mean(correct)),
        f"{prefix}/accuracy_ci_low": low,
        f"{prefix}/accuracy_ci_high": high,
    }


def _paired(prefix: str, start: list[bool], now: list[bool]) -> dict[str, float]:
    """Tasks gained and lost since the start, and the exact sign-test p of the difference."""
    gained = sum(not before and after for before, after in zip(start, now))
    lost = sum(before and not after for before, after in zip(start, now))
    return {f"{prefix}/gained": float(gained), f"{prefix}/lost": float(lost),
            f"{prefix}/sign_test_p": sign_test_p(gained, lost)}
