"""TRR++ (Task-Relative REINFORCE++) advantages.

Absolute Zero trains the proposer and the solver together on a mix of task types. Their
rewards live on different scales (the proposer's learnability is at most 1 - 1/n, the
solver's correctness is 0/1, format penalties are negative) and different task types have
different difficulty, so one shared baseline would mostly teach "solve deductions, not
abductions". TRR++ therefore normalises every reward by the mean and standard deviation
of its *own* group, a group being ``(role, task_type)``: three task types give six
baselines::

    A_i = (r_i - mean_g) / (std_g + eps)        for every sample i in group g

``std_g`` is the population standard deviation (ddof = 0), as in REINFORCE++. A group
whose rewards are all equal (including a group of one) carries no learning signal and
gets advantage exactly 0, never NaN. The function does not care what a group key is, only
that it is hashable, so any environment's task types work.

:func:`advantage_stats` returns the per-group baselines (:class:`AdvantageStats`) that the
metrics writer logs next to the advantages; :func:`stats_metrics` flattens them into
``{"propose/deduction/reward_mean": ...}`` form.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["AdvantageStats", "advantage_stats", "stats_metrics", "trrpp_advantages"]


def _group_indices(
    rewards: Sequence[float], groups: Sequence[Hashable]
) -> tuple[np.ndarray, dict[Hashable, list[int]]]:
    """Validate inputs; return rewards as float64 and the sample indices of each group.

    Groups are listed in order of first appearance.
    """
    if isinstance(rewards, (str, bytes)) or isinstance(groups, (str, bytes)):
        raise TypeError("rewards and groups must be sequences with one element per sample, not strings")
    if len(rewards) != len(groups):
        raise ValueError(
            f"rewards and groups must have one element per sample: got {len(rewards)} rewards "
            f"and {len(groups)} group keys"
        )
    try:
        values = np.asarray(rewards, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"rewards must be real numbers: {error}") from None
    if values.ndim != 1:
        raise ValueError(f"rewards must be a flat sequence of numbers, got shape {values.shape}")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        first = int(bad[0])
        raise ValueError(
            f"rewards must be finite: rewards[{first}] = {values[first]!r} (group {groups[first]!r}); "
            "a NaN or infinite reward usually means a reward term or plugin misbehaved"
        )
    members: dict[Hashable, list[int]] = {}
    for index, group in enumerate(groups):
        try:
            members.setdefault(group, []).append(index)
        except TypeError:
            raise TypeError(
                f"group keys must be hashable (e.g. a (role, task_type) tuple); groups[{index}] "
                f"is an unhashable {type(group).__name__}: {group!r}"
            ) from None
    return values, members


def trrpp_advantages(
    rewards: Sequence[float], groups: Sequence[Hashable], eps: float = 1e-6
) -> np.ndarray:
    """Per-group normalised advantages.

    Args:
        rewards: one scalar reward per sample.
        groups: one hashable group key per sample, normally ``(role, task_type)``.
        eps: added to the group's standard deviation to keep small-variance groups finite.

    Returns:
        A float64 array with one advantage per sample, in input order:
        ``(r_i - mean_g) / (std_g + eps)`` using the population std of the sample's group,
        and exactly ``0.0`` for every sample of a group whose rewards are all equal
        (a single-element group included). Empty input gives an empty array.

    Raises:
        ValueError: lengths differ, a reward is NaN/infinite, or ``eps`` is negative or
            not finite.
        TypeError: a reward is not a number or a group key is unhashable.
    """
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    values, members = _group_indices(rewards, groups)
    advantages = np.zeros(values.shape, dtype=np.float64)
    for indices in members.values():
        group_rewards = values[indices]
        # Compare values, not the computed std: the mean of equal floats can be off by an
        # ulp, and a tiny nonzero std divided into a tiny nonzero residual is noise.
        if group_rewards.min() == group_rewards.max():
            continue
        mean = group_rewards.mean()
        std = group_rewards.std()
        advantages[indices] = (group_rewards - mean) / (std + eps)
    return advantages


@dataclass(frozen=True)
class AdvantageStats:
    """The baseline TRR++ used for one group, for logging.

    ``count`` samples in the group; ``mean`` and ``std`` of their rewards (population std,
    the values the advantages were normalised with); ``degenerate`` is True when all
    rewards were equal, so the group contributed no gradient this step.
    """

    count: int
    mean: float
    std: float
    degenerate: bool

    def as_metrics(self, prefix: str) -> dict[str, float]:
        """``{prefix + "/reward_mean": ..., "/reward_std", "/count", "/degenerate"}``."""
        return {
            f"{prefix}/reward_mean": self.mean,
            f"{prefix}/reward_std": self.std,
            f"{prefix}/count": float(self.count),
            f"{prefix}/degenerate": float(self.degenerate),
        }


def advantage_stats(
    rewards: Sequence[float], groups: Sequence[Hashable]
) -> dict[Hashable, AdvantageStats]:
    """Per-group reward baselines, keyed by group in order of first appearance.

    Same validation and errors as :func:`trrpp_advantages`.
    """
    values, members = _group_indices(rewards, groups)
    stats: dict[Hashable, AdvantageStats] = {}
    for group, indices in members.items():
        group_rewards = values[indices]
        degenerate = bool(group_rewards.min() == group_rewards.max())
        stats[group] = AdvantageStats(
            count=len(indices),
            mean=float(group_rewards.mean()),
            std=0.0 if degenerate else float(group_rewards.std()),
            degenerate=degenerate,
        )
    return stats


def _group_name(group: Hashable) -> str:
    if isinstance(group, tuple):
        return "/".join(str(part) for part in group)
    return str(group)


def stats_metrics(stats: Mapping[Hashable, AdvantageStats]) -> dict[str, float]:
    """Flatten :func:`advantage_stats` output into metric names.

    A tuple group ``("solve", "abduction")`` becomes the prefix ``"solve/abduction"``; any
    other key uses ``str(key)``.

    Returns:
        ``{"solve/abduction/reward_mean": ..., "solve/abduction/reward_std": ...,
        "solve/abduction/count": ..., "solve/abduction/degenerate": 0.0 or 1.0, ...}``.
    """
    metrics: dict[str, float] = {}
    for group, group_stats in stats.items():
        metrics.update(group_stats.as_metrics(_group_name(group)))
    return metrics
