"""Rewards for both roles: learnability for the proposer, correctness for the solver.

The values are environment-agnostic: they read only :class:`~absolutezero.protocol.Validation`
and :class:`~absolutezero.protocol.Verdict`, never a task's payload.

Proposer (one proposal, ``n >= 2`` solver rollouts on it)::

    invalid proposal (unparseable OR parsed but failed validation)  -> format_penalty
    valid, p̄ = mean(verdict.correct) in {0, 1}                      -> unlearnable
    valid, 0 < p̄ < 1                                                -> 1 - p̄

Solver (one answer)::

    correct (score >= 1)                    -> 1.0
    unparseable answer (format_ok is False) -> format_penalty
    well-formed but wrong (incl. 0 < score < 1) -> wrong_answer

Paper versus original code
--------------------------
The paper (Absolute Zero, Zhao et al. 2025) gives ``-1`` for any format error (an
unparseable or invalid proposal, an unparseable answer), ``0`` for a wrong answer and
``0`` for a proposal the solver always or never solves. Both unparseable proposals and
proposals that parse but fail validation (crash, non-determinism, unsafe code, ...) get
the format penalty, as in the paper; ``Validation.format_ok`` still tells them apart for
metrics. The released code differs in two values: a well-formed wrong answer gets
``-0.5`` and the proposer's ``0`` for an unlearnable task becomes ``-0.5``. Both variants
are available (:data:`PAPER`, :data:`ORIGINAL`), the default is the paper, and every
value can be overridden individually with :meth:`RewardScheme.from_config`.

Learnability needs ``n >= 2`` *sampled* rollouts: with one rollout, or with greedy
decoding (identical samples), p̄ is always 0 or 1 and the proposer reward is constant,
which silently turns off proposer learning. :func:`success_rate` therefore refuses fewer
than two verdicts; drawing the rollouts with sampling is the caller's job.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

from absolutezero.protocol import Validation, Verdict

__all__ = [
    "ORIGINAL",
    "PAPER",
    "VARIANTS",
    "RewardScheme",
    "learnability",
    "propose_reward",
    "solve_reward",
    "success_rate",
]

MIN_LEARNABILITY_SAMPLES = 2


@dataclass(frozen=True)
class RewardScheme:
    """The three reward values that are not fixed by the method.

    ``format_penalty`` goes to an unparseable or invalid proposal and to an unparseable
    answer; ``wrong_answer`` to a well-formed but wrong answer; ``unlearnable`` to a valid
    proposal whose estimated solve rate is exactly 0 or 1. A correct answer always gets
    1.0 and a learnable proposal ``1 - p̄``; those are the method, not a setting.
    """

    format_penalty: float
    wrong_answer: float
    unlearnable: float

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(
                    f"RewardScheme.{spec.name} must be a number, got {type(value).__name__} {value!r}"
                )
            if not math.isfinite(value):
                raise ValueError(f"RewardScheme.{spec.name} must be finite, got {value!r}")
            object.__setattr__(self, spec.name, float(value))

    @classmethod
    def from_config(
        cls,
        variant: str = "paper",
        format_penalty: float | None = None,
        wrong_answer: float | None = None,
        unlearnable: float | None = None,
    ) -> "RewardScheme":
        """The named variant's values with any non-``None`` argument overriding one value.

        ``variant`` is ``"paper"`` or ``"original"`` (see the module docstring). Matches the
        run config's ``rewards`` section, so ``RewardScheme.from_config(**cfg.rewards)``
        works.

        Raises:
            ValueError: unknown variant (with the closest valid name) or a non-finite value.
        """
        if variant not in VARIANTS:
            from absolutezero.config import did_you_mean

            raise ValueError(
                f"unknown reward variant {variant!r}{did_you_mean(str(variant), list(VARIANTS))} "
                f"(choose one of {sorted(VARIANTS)})"
            )
        base = VARIANTS[variant]
        return cls(
            format_penalty=base.format_penalty if format_penalty is None else format_penalty,
            wrong_answer=base.wrong_answer if wrong_answer is None else wrong_answer,
            unlearnable=base.unlearnable if unlearnable is None else unlearnable,
        )


PAPER = RewardScheme(format_penalty=-1.0, wrong_answer=0.0, unlearnable=0.0)
ORIGINAL = RewardScheme(format_penalty=-1.0, wrong_answer=-0.5, unlearnable=-0.5)
VARIANTS: dict[str, RewardScheme] = {"paper": PAPER, "original": ORIGINAL}


def learnability(success_rate: float) -> float:
    """The paper's learnability of a task with solve rate ``success_rate``.

    Returns:
        ``0.0`` when the rate is exactly 0 or 1 (nothing to learn: too hard or too easy),
        otherwise ``1 - success_rate`` (harder-but-solvable tasks are worth more).

    Raises:
        ValueError: the rate is not a finite number in [0, 1].
    """
    rate = float(success_rate)
    if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
        raise ValueError(f"success_rate must be a number in [0, 1], got {success_rate!r}")
    if rate == 0.0 or rate == 1.0:
        return 0.0
    return 1.0 - rate


def success_rate(verdicts: Sequence[Verdict]) -> float:
    """p̄: the share of ``verdicts`` that are correct (``score >= 1``).

    Partial scores count as failures and unparseable answers count as failures, so a
    valid task whose rollouts were all unparseable has p̄ = 0.

    Raises:
        ValueError: fewer than two verdicts (one rollout can only give 0 or 1).
        TypeError: an element is not a :class:`Verdict`.
    """
    if len(verdicts) < MIN_LEARNABILITY_SAMPLES:
        raise ValueError(
            f"learnability needs at least {MIN_LEARNABILITY_SAMPLES} sampled solver rollouts per "
            f"proposal, got {len(verdicts)}: with fewer (or with greedy decoding) the solve rate "
            "is always 0 or 1 and the proposer reward is constant; raise "
            "selfplay.learnability_samples"
        )
    for index, verdict in enumerate(verdicts):
        if not isinstance(verdict, Verdict):
            raise TypeError(f"verdicts[{index}] is a {type(verdict).__name__}, expected a Verdict")
    return sum(1 for verdict in verdicts if verdict.correct) / len(verdicts)


def solve_reward(verdict: Verdict, scheme: RewardScheme) -> float:
    """The solver's reward for one answer.

    Returns:
        ``1.0`` if the answer is correct, ``scheme.format_penalty`` if it could not be
        parsed, otherwise ``scheme.wrong_answer`` (also for partial scores below 1).
    """
    if not isinstance(verdict, Verdict):
        raise TypeError(f"solve_reward needs a Verdict, got {type(verdict).__name__}")
    if verdict.correct:
        return 1.0
    if not verdict.format_ok:
        return scheme.format_penalty
    return scheme.wrong_answer


def propose_reward(
    validation: Validation, verdicts: Sequence[Verdict], scheme: RewardScheme
) -> float:
    """The proposer's reward for one proposal.

    ``verdicts`` are the solver's scored rollouts on the validated task; they are ignored
    (and may be empty) for an invalid proposal.

    Returns:
        ``scheme.format_penalty`` for an invalid proposal (unparseable or failing
        validation, as in the paper); for a valid one ``scheme.unlearnable`` when p̄ is 0
        or 1, otherwise ``1 - p̄``.

    Raises:
        ValueError: a valid proposal with fewer than two verdicts.
    """
    if not isinstance(validation, Validation):
        raise TypeError(f"propose_reward needs a Validation, got {type(validation).__name__}")
    if not validation.valid:
        return scheme.format_penalty
    rate = success_rate(verdicts)
    if rate == 0.0 or rate == 1.0:
        return scheme.unlearnable
    return learnability(rate)
