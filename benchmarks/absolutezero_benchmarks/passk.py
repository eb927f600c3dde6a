"""The unbiased pass@k estimator (Chen et al. 2021, "Evaluating Large Language Models
Trained on Code").

With ``n`` samples of which ``c`` are correct, the probability that at least one of ``k``
samples drawn without replacement is correct is ``1 - C(n-c, k) / C(n, k)``. The binomial
coefficients overflow floats for realistic ``n``, so the ratio is computed as the
product ``prod_{i=n-c+1}^{n} (1 - k / i)``, which is exact in exact arithmetic and stable
in floating point.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["mean_pass_at_k", "pass_at_k"]


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    return int(value)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of pass@k for one problem.

    Args:
        n: samples drawn for the problem (``n >= k``).
        c: how many of them are correct (``0 <= c <= n``).
        k: the k of pass@k (``k >= 1``).

    Returns:
        A probability in [0, 1]: ``1 - C(n-c, k) / C(n, k)``; exactly 1.0 when fewer than
        ``k`` samples are wrong (every k-subset contains a correct one) and 0.0 when
        ``c == 0``.

    Raises:
        TypeError: a non-integer argument.
        ValueError: ``k < 1``, ``n < k`` or ``c`` outside ``[0, n]``.
    """
    n, c, k = _check_int("n", n), _check_int("c", c), _check_int("k", k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if n < k:
        raise ValueError(f"pass@{k} needs at least k={k} samples per problem, got n={n}")
    if not 0 <= c <= n:
        raise ValueError(f"the number of correct samples must be in [0, n={n}], got c={c}")
    if n - c < k:
        return 1.0
    # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k/i)
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def mean_pass_at_k(correct_counts: Sequence[int], n: int, k: int) -> float:
    """Mean pass@k over problems that each had ``n`` samples.

    Returns:
        The benchmark's pass@k in [0, 1], or ``nan`` when there are no problems.
    """
    if len(correct_counts) == 0:
        return float("nan")
    return float(np.mean([pass_at_k(n, c, k) for c in correct_counts]))
