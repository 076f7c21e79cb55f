"""The acceptance intervals hold what they promise."""

import pytest
from scipy import stats as st

from autograde import stats


@pytest.mark.parametrize("n, prob", [(50, 0.1), (1000, 0.3), (10**6, 0.8), (12345, 0.58)])
def test_false_failure_probability_is_at_most_alpha(n, prob):
    iv = stats.binomial_interval(n, prob)
    outside = st.binom.cdf(iv.lo - 1, n, prob) + st.binom.sf(iv.hi, n, prob)
    assert outside <= stats.ALPHA_PER_TEST
    assert iv.lo <= n * prob <= iv.hi


def test_interval_is_tight_enough_to_see_a_one_point_error_in_the_rate():
    iv = stats.binomial_interval(10**6, 0.3)
    assert 0.31 * 10**6 not in iv and 0.29 * 10**6 not in iv


def test_degenerate_probabilities_are_exact():
    assert (stats.binomial_interval(10, 0.0).lo, stats.binomial_interval(10, 0.0).hi) == (0, 0)
    assert (stats.binomial_interval(10, 1.0).lo, stats.binomial_interval(10, 1.0).hi) == (10, 10)


def test_per_check_budget_is_one_in_a_million():
    assert stats.FALSE_FAILURE_PER_CHECK <= 1e-6
