"""TRR++: per-(role, task type) normalisation, degenerate groups, input checks, stats."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from absolutezero.trrpp import AdvantageStats, advantage_stats, stats_metrics, trrpp_advantages

EPS = 1e-6


def test_single_group_hand_computed() -> None:
    # mean 0.5, population std 0.5 -> (r - 0.5) / (0.5 + eps)
    advantages = trrpp_advantages([1, 0, 0, 1], ["g"] * 4)
    scale = 0.5 / (0.5 + EPS)
    assert advantages.tolist() == pytest.approx([scale, -scale, -scale, scale], abs=1e-12)
    assert advantages.tolist() == pytest.approx([1, -1, -1, 1], abs=1e-5)
    assert advantages.dtype == np.float64


def test_eps_changes_the_scale() -> None:
    assert trrpp_advantages([1, 0], ["g", "g"], eps=0.5).tolist() == pytest.approx([0.5, -0.5])
    assert trrpp_advantages([1, 0], ["g", "g"], eps=0.0).tolist() == [1.0, -1.0]


def test_interleaved_groups_use_their_own_baselines() -> None:
    propose_d, solve_d, solve_a = ("propose", "deduction"), ("solve", "deduction"), ("solve", "abduction")
    rewards = [0.5, 1.0, -1.0, 0.0, 0.0, 1.0, 0.25]
    groups = [propose_d, solve_d, solve_a, solve_d, solve_a, solve_d, propose_d]
    advantages = trrpp_advantages(rewards, groups, eps=0.0)
    # propose_d: [0.5, 0.25] mean 0.375 std 0.125 -> [1, -1]
    # solve_d: [1, 0, 1] mean 2/3 std sqrt(2)/3 -> [1/sqrt2, -sqrt2, 1/sqrt2]
    # solve_a: [-1, 0] mean -0.5 std 0.5 -> [-1, 1]
    root2 = math.sqrt(2)
    expected = [1.0, 1 / root2, -1.0, -root2, 1.0, 1 / root2, -1.0]
    assert advantages.tolist() == pytest.approx(expected)


def test_six_baselines_for_three_task_types() -> None:
    # The same reward vector in every (role, task type) group gives the same advantages
    # per group, whatever the other groups contain.
    rng = np.random.default_rng(7)
    groups = [(role, t) for role in ("propose", "solve") for t in ("ded", "abd", "ind") for _ in range(4)]
    rewards = rng.normal(size=len(groups)) + np.repeat(np.arange(6) * 10.0, 4)
    advantages = trrpp_advantages(rewards.tolist(), groups)
    for g in range(6):
        chunk = advantages[4 * g : 4 * g + 4]
        assert chunk.mean() == pytest.approx(0.0, abs=1e-9)
        assert chunk.std() == pytest.approx(1.0, abs=1e-4)
    assert len(advantage_stats(rewards.tolist(), groups)) == 6


@pytest.mark.parametrize("value", [0.0, 1.0, -1.0, 0.1, 1e9])
def test_all_equal_group_gives_exact_zero(value: float) -> None:
    advantages = trrpp_advantages([value] * 5 + [0.0, 1.0], ["same"] * 5 + ["mixed"] * 2, eps=0.0)
    assert advantages[:5].tolist() == [0.0] * 5
    assert not np.isnan(advantages).any()
    assert advantages[5:].tolist() == [-1.0, 1.0]


def test_single_element_groups_give_zero() -> None:
    assert trrpp_advantages([3.0, -1.0, 0.5], ["a", "b", "c"]).tolist() == [0.0, 0.0, 0.0]


def test_empty_input() -> None:
    advantages = trrpp_advantages([], [])
    assert advantages.shape == (0,)


def test_length_mismatch_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="got 3 rewards and 2 group keys"):
        trrpp_advantages([1, 0, 1], ["a", "a"])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_reward_is_a_clear_error(bad: float) -> None:
    with pytest.raises(ValueError, match=r"rewards\[1\] = .* \(group 'b'\)"):
        trrpp_advantages([0.0, bad], ["a", "b"])


def test_unhashable_group_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match=r"groups\[0\] is an unhashable list"):
        trrpp_advantages([0.0], [["solve", "deduction"]])


def test_non_numeric_reward_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="rewards must be real numbers"):
        trrpp_advantages(["high", 0.0], ["a", "a"])


@pytest.mark.parametrize("eps", [-1e-6, math.nan, "1e-6", None])
def test_bad_eps(eps: float) -> None:
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        trrpp_advantages([0.0, 1.0], ["a", "a"], eps=eps)


@given(
    st.lists(
        st.tuples(st.sampled_from(["p", "s"]), st.floats(-5, 5, allow_nan=False)), min_size=1, max_size=40
    )
)
def test_properties_zero_mean_bounded_scale(pairs: list[tuple[str, float]]) -> None:
    groups = [g for g, _ in pairs]
    rewards = [r for _, r in pairs]
    advantages = trrpp_advantages(rewards, groups)
    assert np.isfinite(advantages).all()
    for group in set(groups):
        chunk = advantages[[i for i, g in enumerate(groups) if g == group]]
        assert abs(chunk.mean()) < 1e-6
        assert chunk.std() <= 1.0 + 1e-9  # std / (std + eps) <= 1
        # order within a group is preserved
        values = [r for g, r in pairs if g == group]
        assert np.all(np.diff(chunk[np.argsort(values, kind="stable")]) >= -1e-9)


def test_advantage_stats_and_metrics() -> None:
    groups = [("solve", "ded"), ("solve", "ded"), ("propose", "ded"), ("propose", "ded"), ("propose", "ded")]
    stats = advantage_stats([1.0, 0.0, -1.0, -1.0, -1.0], groups)
    assert list(stats) == [("solve", "ded"), ("propose", "ded")]
    assert stats[("solve", "ded")] == AdvantageStats(count=2, mean=0.5, std=0.5, degenerate=False)
    assert stats[("propose", "ded")] == AdvantageStats(count=3, mean=-1.0, std=0.0, degenerate=True)
    metrics = stats_metrics(stats)
    assert metrics == {
        "solve/ded/reward_mean": 0.5,
        "solve/ded/reward_std": 0.5,
        "solve/ded/count": 2.0,
        "solve/ded/degenerate": 0.0,
        "propose/ded/reward_mean": -1.0,
        "propose/ded/reward_std": 0.0,
        "propose/ded/count": 3.0,
        "propose/ded/degenerate": 1.0,
    }
    assert all(isinstance(value, float) for value in metrics.values())


def test_stats_match_advantage_normalisation() -> None:
    rewards = [0.2, 0.9, 0.4, -1.0, 1.0]
    groups = ["x", "x", "x", "y", "y"]
    stats = advantage_stats(rewards, groups)
    advantages = trrpp_advantages(rewards, groups, eps=0.0)
    for i, (reward, group) in enumerate(zip(rewards, groups)):
        assert advantages[i] == pytest.approx((reward - stats[group].mean) / stats[group].std)
    assert stats_metrics({"plain": stats["x"]})["plain/count"] == 3.0


def test_numpy_inputs_are_accepted() -> None:
    advantages = trrpp_advantages(np.array([2.0, 0.0], dtype=np.float32), np.array(["a", "a"]), eps=np.float32(0))
    assert advantages.tolist() == [1.0, -1.0]
