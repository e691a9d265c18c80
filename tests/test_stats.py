"""Intervals and the paired test against published values and closed forms."""

from __future__ import annotations

import math

import pytest

from skipthink.stats import mean_interval, paired_t_test, t_cdf, t_quantile, wilson_interval

# Student's sleep data (R's `sleep`): extra hours of sleep under two drugs, same ten patients.
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_wilson_interval_matches_published_values():
    # Newcombe (1998), Table I: 81 of 263 -> 0.2553 to 0.3662; 15 of 148 -> 0.0624 to 0.1605.
    ci = wilson_interval(81, 263)
    assert (round(ci.low, 4), round(ci.high, 4)) == (0.2553, 0.3662)
    ci = wilson_interval(15, 148)
    assert (round(ci.low, 4), round(ci.high, 4)) == (0.0624, 0.1605)
    assert ci.estimate == pytest.approx(15 / 148)


def test_wilson_interval_at_the_edges_stays_in_range():
    none, everything = wilson_interval(0, 10), wilson_interval(10, 10)
    assert none.low == 0.0 and none.high == pytest.approx(0.2775, abs=1e-4)
    assert everything.high == 1.0 and everything.low == pytest.approx(0.7225, abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(3, 0)


def test_t_cdf_matches_closed_forms():
    for t in (-3.0, -0.5, 0.0, 0.7, 2.5, 40.0):
        assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)  # Cauchy
        assert t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)
    assert t_cdf(1.96, 10_000) == pytest.approx(0.975, abs=1e-4)  # tends to the normal


def test_t_quantiles_match_the_table():
    table = {1: 12.7062, 2: 4.3027, 4: 2.7764, 10: 2.2281, 30: 2.0423}
    for df, value in table.items():
        assert t_quantile(0.975, df) == pytest.approx(value, abs=1e-4)
    assert t_quantile(0.025, 4) == pytest.approx(-2.7764, abs=1e-4)


def test_mean_interval_over_seeds():
    ci = mean_interval([70.0, 74.0, 78.0])
    # mean 74, sd 4, se 4/sqrt(3), t(0.975, 2) = 4.3027
    assert ci.estimate == 74.0
    assert ci.half_width == pytest.approx(4.3027 * 4 / math.sqrt(3), abs=1e-3)
    single = mean_interval([81.5])
    assert single.estimate == 81.5 and single.low is None and single.half_width is None


def test_paired_t_test_matches_r_on_the_sleep_data():
    # R: t.test(extra ~ group, data = sleep, paired = TRUE)
    #    t = -4.0621, df = 9, p-value = 0.002833; 95 % CI -2.4598858 -0.7001142; mean diff -1.58
    result = paired_t_test(SLEEP_1, SLEEP_2)
    assert result.n == 10 and result.df == 9
    assert result.mean_difference == pytest.approx(-1.58)
    assert result.t == pytest.approx(-4.0621, abs=1e-4)
    assert result.p_value == pytest.approx(0.002833, abs=1e-6)
    assert result.interval.low == pytest.approx(-2.4598858, abs=1e-6)
    assert result.interval.high == pytest.approx(-0.7001142, abs=1e-6)


def test_paired_t_test_degenerate_and_invalid_inputs():
    same = paired_t_test([1.0, 0.0, 1.0], [1.0, 0.0, 1.0])
    assert same.mean_difference == 0.0 and same.p_value == 1.0
    shifted = paired_t_test([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert shifted.mean_difference == 1.0 and shifted.p_value == 0.0 and math.isinf(shifted.t)
    with pytest.raises(ValueError, match="differ in length"):
        paired_t_test([1.0, 2.0], [1.0])
