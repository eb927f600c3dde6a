"""Wilson intervals and moving averages, against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from absolutezero.intervals import moving_average, wilson_interval


def test_wilson_interval_matches_the_textbook_values():
    # 5 of 10: centre 0.5, half-width z*sqrt(0.025 + z^2/400)/(1 + z^2/10) = 0.2762
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    # the extremes stay inside [0, 1] and are not zero-width: 0 of 32 -> [0, 0.1072]
    low, high = wilson_interval(0, 32)
    assert low == 0.0 and high == pytest.approx(0.1072, abs=1e-4)
    low, high = wilson_interval(32, 32)
    assert high == 1.0 and low == pytest.approx(1 - 0.1072, abs=1e-4)
    # wider for 8 tasks than for 32 at the same accuracy
    assert wilson_interval(4, 8)[1] - wilson_interval(4, 8)[0] > wilson_interval(16, 32)[1] - wilson_interval(16, 32)[0]
    for bad in ((1, 0), (-1, 3), (4, 3)):
        with pytest.raises(ValueError, match="successes"):
            wilson_interval(*bad)


def test_moving_average_is_trailing_and_shorter_at_the_start():
    assert moving_average([1, 2, 3, 4, 5], 2) == [1.0, 1.5, 2.5, 3.5, 4.5]
    assert moving_average([0.0, 1.0, 0.0, 1.0], 5) == [0.0, 0.5, pytest.approx(1 / 3), 0.5]
    assert moving_average([], 3) == []
    values = [math.sin(i) for i in range(20)]
    assert moving_average(values, 1) == pytest.approx(values)
    with pytest.raises(ValueError, match="window"):
        moving_average([1.0], 0)
