"""Acceptance intervals for the statistical properties of random code.

Every statistical property the checks test is a two-sided binomial test whose false-failure
probability (a correct implementation rejected by bad luck) is ``ALPHA_PER_TEST``. A check runs at
most ``MAX_STAT_TESTS_PER_CHECK`` of them, so by the union bound a correct implementation fails a
whole check by chance with probability at most ``FALSE_FAILURE_PER_CHECK`` = 1e-6.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

ALPHA_PER_TEST = 1e-7
MAX_STAT_TESTS_PER_CHECK = 10
FALSE_FAILURE_PER_CHECK = ALPHA_PER_TEST * MAX_STAT_TESTS_PER_CHECK  # 1e-6


@dataclass(frozen=True)
class Interval:
    """Counts ``lo <= k <= hi`` are accepted for ``k ~ Binomial(n, prob)``."""

    n: int
    prob: float
    lo: int
    hi: int

    def __contains__(self, k: int) -> bool:
        return self.lo <= k <= self.hi

    def describe(self) -> str:
        return f"between {self.lo / self.n:.4f} and {self.hi / self.n:.4f}"


@functools.lru_cache(maxsize=4096)
def binomial_interval(n: int, prob: float, alpha: float = ALPHA_PER_TEST) -> Interval:
    """The central interval holding a Binomial(n, prob) count with probability at least 1 - alpha.

    ``P(k < lo) <= alpha / 2`` and ``P(k > hi) <= alpha / 2`` by the definitions of scipy's
    ``ppf`` and ``isf`` on a discrete distribution.
    """
    if n <= 0:
        raise ValueError("a binomial test needs at least one trial")
    if prob <= 0.0:
        return Interval(n, prob, 0, 0)
    if prob >= 1.0:
        return Interval(n, prob, n, n)
    from scipy import stats  # imported here: the kernel's probes and plan building never need SciPy

    dist = stats.binom(n, prob)
    return Interval(n, prob, int(dist.ppf(alpha / 2)), int(dist.isf(alpha / 2)))
