"""Rewards: paper and original-code values, overrides, learnability and its n >= 2 rule."""

from __future__ import annotations

import math

import pytest

from absolutezero.protocol import Task, Validation, Verdict
from absolutezero.rewards import (
    ORIGINAL,
    PAPER,
    RewardScheme,
    learnability,
    propose_reward,
    solve_reward,
    success_rate,
)

TASK = Task("deduction", {"program": "def f(a):\n    return a", "input": "'x'", "output": "'x'"})
VALID = Validation(task=TASK)
UNPARSEABLE = Validation(task=None, reason="no ```python block", format_ok=False)
FAILED = Validation(task=None, reason="non-deterministic output", format_ok=True)

RIGHT = Verdict(score=1.0)
WRONG = Verdict(score=0.0, reason="expected 'x'")
PARTIAL = Verdict(score=0.5, reason="3 of 6 pairs")
GARBLED = Verdict(score=0.0, format_ok=False, reason="no answer block")


def test_variant_values_match_paper_and_original_code() -> None:
    assert (PAPER.format_penalty, PAPER.wrong_answer, PAPER.unlearnable) == (-1.0, 0.0, 0.0)
    assert (ORIGINAL.format_penalty, ORIGINAL.wrong_answer, ORIGINAL.unlearnable) == (-1.0, -0.5, -0.5)
    assert RewardScheme.from_config() == PAPER
    assert RewardScheme.from_config("original") == ORIGINAL


def test_each_value_is_individually_overridable() -> None:
    scheme = RewardScheme.from_config("original", wrong_answer=-0.25)
    assert (scheme.format_penalty, scheme.wrong_answer, scheme.unlearnable) == (-1.0, -0.25, -0.5)
    scheme = RewardScheme.from_config("paper", format_penalty=-2, unlearnable=0.1)
    assert (scheme.format_penalty, scheme.wrong_answer, scheme.unlearnable) == (-2.0, 0.0, 0.1)
    assert isinstance(scheme.format_penalty, float)
    # 0.0 is a real override, not "unset"
    assert RewardScheme.from_config("original", unlearnable=0.0).unlearnable == 0.0


def test_from_config_accepts_the_run_config_section() -> None:
    from absolutezero.config import load_config

    config = load_config(["rewards.variant=original", "rewards.wrong_answer=-0.1"])
    scheme = RewardScheme.from_config(**config.rewards)
    assert (scheme.format_penalty, scheme.wrong_answer, scheme.unlearnable) == (-1.0, -0.1, -0.5)


def test_unknown_variant_suggests_the_closest() -> None:
    with pytest.raises(ValueError, match=r"unknown reward variant 'orignal'.*did you mean 'original'"):
        RewardScheme.from_config("orignal")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="wrong_answer must be finite"):
        RewardScheme.from_config(wrong_answer=bad)


def test_non_numeric_value_is_rejected() -> None:
    with pytest.raises(TypeError, match="format_penalty must be a number"):
        RewardScheme(format_penalty="-1", wrong_answer=0.0, unlearnable=0.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rate", "expected"),
    [(0.0, 0.0), (1.0, 0.0), (0.5, 0.5), (0.25, 0.75), (0.75, 0.25), (1 / 3, 2 / 3)],
)
def test_learnability(rate: float, expected: float) -> None:
    assert learnability(rate) == pytest.approx(expected)


@pytest.mark.parametrize("bad", [-0.1, 1.1, math.nan])
def test_learnability_rejects_rates_outside_unit_interval(bad: float) -> None:
    with pytest.raises(ValueError, match=r"success_rate must be a number in \[0, 1\]"):
        learnability(bad)


def test_success_rate_counts_only_full_scores() -> None:
    assert success_rate([RIGHT, WRONG, PARTIAL, RIGHT]) == 0.5
    assert success_rate([PARTIAL, PARTIAL]) == 0.0
    assert success_rate([GARBLED, GARBLED, GARBLED]) == 0.0


@pytest.mark.parametrize("verdicts", [[], [RIGHT], [WRONG]])
def test_learnability_needs_two_rollouts(verdicts: list[Verdict]) -> None:
    # Regression (original trap): greedy or single-rollout estimation makes p-bar always
    # 0 or 1, so the proposer reward is constant; the core refuses n < 2.
    with pytest.raises(ValueError, match="at least 2 sampled solver rollouts"):
        propose_reward(VALID, verdicts, PAPER)


def test_success_rate_rejects_non_verdicts() -> None:
    with pytest.raises(TypeError, match=r"verdicts\[1\] is a float"):
        success_rate([RIGHT, 1.0])  # type: ignore[list-item]


def test_solve_reward_paper_and_original() -> None:
    assert [solve_reward(v, PAPER) for v in (RIGHT, WRONG, PARTIAL, GARBLED)] == [1.0, 0.0, 0.0, -1.0]
    assert [solve_reward(v, ORIGINAL) for v in (RIGHT, WRONG, PARTIAL, GARBLED)] == [1.0, -0.5, -0.5, -1.0]


def test_solve_reward_uses_overrides() -> None:
    scheme = RewardScheme.from_config(format_penalty=-3.0, wrong_answer=-0.2)
    assert solve_reward(GARBLED, scheme) == -3.0
    assert solve_reward(WRONG, scheme) == -0.2
    assert solve_reward(RIGHT, scheme) == 1.0


def test_correct_answer_wins_over_format_flag() -> None:
    # A verdict with full score is a success even if the environment flagged format.
    assert solve_reward(Verdict(score=1.0, format_ok=False), PAPER) == 1.0


@pytest.mark.parametrize("scheme", [PAPER, ORIGINAL])
def test_invalid_proposals_get_the_format_penalty(scheme: RewardScheme) -> None:
    assert propose_reward(UNPARSEABLE, [], scheme) == -1.0
    assert propose_reward(FAILED, [], scheme) == -1.0
    # verdicts are irrelevant for an invalid proposal
    assert propose_reward(FAILED, [RIGHT, WRONG], scheme) == -1.0


@pytest.mark.parametrize(
    ("verdicts", "paper", "original"),
    [
        ([RIGHT, RIGHT], 0.0, -0.5),  # p = 1: too easy
        ([WRONG, WRONG, WRONG], 0.0, -0.5),  # p = 0: too hard
        ([GARBLED, GARBLED], 0.0, -0.5),  # unparseable answers still count as p = 0
        ([RIGHT, WRONG], 0.5, 0.5),
        ([RIGHT, WRONG, WRONG, WRONG], 0.75, 0.75),
        ([RIGHT, RIGHT, RIGHT, GARBLED], 0.25, 0.25),
        ([RIGHT, PARTIAL], 0.5, 0.5),  # partial credit is not a success
    ],
)
def test_propose_reward_is_learnability(verdicts: list[Verdict], paper: float, original: float) -> None:
    assert propose_reward(VALID, verdicts, PAPER) == pytest.approx(paper)
    assert propose_reward(VALID, verdicts, ORIGINAL) == pytest.approx(original)


def test_propose_reward_unlearnable_override() -> None:
    scheme = RewardScheme.from_config("paper", unlearnable=-0.3)
    assert propose_reward(VALID, [RIGHT, RIGHT, RIGHT], scheme) == -0.3
    assert propose_reward(VALID, [RIGHT, WRONG, RIGHT], scheme) == pytest.approx(1 / 3)
