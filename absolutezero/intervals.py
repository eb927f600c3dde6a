"""Confidence intervals and smoothing for the figures a run reports.

Why Wilson's interval: probe accuracies are proportions over a few dozen tasks, often
near 0 or 1, where the normal approximation gives intervals outside [0, 1] or of zero
width; Wilson's score interval stays inside and keeps close to its nominal coverage
for small n (Brown, Cai and DasGupta 2001).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["moving_average", "wilson_interval"]


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson's score interval for a proportion (95% with the default ``z``).

    Raises:
        ValueError: ``n < 1`` or ``successes`` outside ``[0, n]``.
    """
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes} of {n}")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """The trailing mean over the last ``window`` values (fewer at the start).

    Raises:
        ValueError: ``window < 1``.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    averaged, total = [], 0.0
    for index, value in enumerate(values):
        total += value
        if index >= window:
            total -= values[index - window]
        averaged.append(total / min(index + 1, window))
    return averaged
