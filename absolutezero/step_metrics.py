"""Assembling one step's metrics from its records.

The names are documented in :mod:`absolutezero.metrics` (which also holds the per-group
summaries used here); this module only walks a step's proposals, answers and trained
samples and puts the numbers under those names, so the step pipeline stays a pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from absolutezero.buffers import BufferSet
from absolutezero.metrics import group_prefix, mean_or_none, proposer_metrics, sample_metrics, solver_metrics
from absolutezero.protocol import PROPOSE, SOLVE, Sample
from absolutezero.step_records import Answer, Proposal, StepStats
from absolutezero.trrpp import advantage_stats, stats_metrics

__all__ = ["buffer_metrics", "scoring_metrics", "work_metrics"]


def scoring_metrics(
    task_types: Sequence[str],
    proposals: Sequence[Proposal],
    answers: Sequence[Answer],
    rewards: Sequence[float],
    groups: Sequence[tuple[str, str]],
    samples: Sequence[Sample],
    advantages: np.ndarray,
) -> dict[str, float]:
    """Rewards, advantages, lengths, valid and solve rates of one step.

    ``rewards``, ``groups``, ``samples`` and ``advantages`` are the trained samples (what
    TRR++ saw), in the same order; ``proposals`` and ``answers`` all of the step's.
    """
    metrics = stats_metrics(advantage_stats(list(rewards), list(groups)))
    for role in (PROPOSE, SOLVE):
        for task_type in task_types:
            chosen = [i for i, g in enumerate(groups) if g == (role, task_type)]
            metrics.update(sample_metrics(
                group_prefix(role, task_type),
                [float(advantages[i]) for i in chosen],
                [len(samples[i].completion_ids) for i in chosen],
                [samples[i].finish_reason == "length" for i in chosen],
            ))
    for task_type in task_types:
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
    return metrics


def work_metrics(stats: StepStats, train: Mapping[str, float]) -> dict[str, float]:
    """What the update returned (``train/*``), phase timings and token counts."""
    metrics = {f"train/{name}": value for name, value in dict(train).items()}
    metrics.update({f"time/{name}": value for name, value in stats.times.items()})
    metrics["tokens/generated"] = float(stats.generated_tokens)
    metrics["generation/prompts_dropped"] = float(stats.prompts_dropped)
    return metrics


def buffer_metrics(buffers: BufferSet) -> dict[str, float]:
    """``buffer/<t>/size`` for every buffer."""
    return {f"buffer/{t}/size": float(size) for t, size in buffers.sizes().items()}
