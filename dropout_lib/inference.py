"""Intervals and tests for the book's experiments, written the way a referee would ask for them.

The chapters compare *arms* (ways of training or evaluating) over several *seeds*, on one fixed test
set. What the helpers here provide, and why:

- :func:`paired`: arms that share seeds (same data split, same initial weights) are compared by the
  per-seed difference, with a Student's t interval over seeds. Pairing removes the variation between
  seeds from the comparison. The interval is *conditional on the test set*: it says how much the
  difference would move with other seeds, not with another test set.
- :func:`detectable`: the smallest true difference that a paired comparison with these seeds would
  detect (at the 5% level, with 80% power). A difference whose interval contains zero is "not detected
  with these seeds"; this number says how large a difference could still hide there.
- :func:`seeds_and_items`: a bootstrap that resamples the seeds *and* the test items (two-way, for a
  crossed seeds x items design; a little conservative), so that the interval also covers the test
  set's own sampling error. Use it wherever the test set is small enough for that error to matter.
- :func:`mcnemar`: an exact test for two classifiers judged on the same test items.
- :func:`bootstrap_mean`, :func:`wilson`: intervals for bounded quantities (accuracies over a few
  seeds, some of which learned a task and some not) that never run past 0% or 100%, as a t interval on
  such data can.

Everything returns plain Python floats, ready for ``myst_nb.glue``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from scipy import stats

LEVEL = 0.95
POWER = 0.8


@dataclass(frozen=True)
class Interval:
    """A mean with the two ends of an interval; ``sd`` and ``n`` of the values it came from."""

    mean: float
    lo: float
    hi: float
    sd: float = float("nan")
    n: int = 0

    @property
    def excludes_zero(self) -> bool:
        return self.lo > 0 or self.hi < 0

    def __iter__(self):  # so that `m, lo, hi = interval` works like dropout_lib.experiments.mean_ci
        return iter((self.mean, self.lo, self.hi))


def t_interval(values: Iterable[float], level: float = LEVEL) -> Interval:
    """Mean and Student's t interval over independent values (for example one number per seed)."""
    v = np.asarray(list(values), dtype=float)
    m = float(v.mean())
    if len(v) < 2:
        return Interval(m, float("nan"), float("nan"), float("nan"), len(v))
    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1)) * sd / math.sqrt(len(v))
    return Interval(m, m - half, m + half, sd, len(v))


def paired(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Interval:
    """The per-seed difference a - b (same seeds, same order), mean and t interval over seeds."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired arms need one value per seed each, got shapes {a.shape} and {b.shape}")
    return t_interval(a - b, level)


def detectable(sd: float, n: int, level: float = LEVEL, power: float = POWER) -> float:
    """The smallest true mean difference that a t test over ``n`` paired seeds with difference standard
    deviation ``sd`` detects at ``level`` with probability ``power``: (t_{1-a/2} + t_{power}) sd / sqrt(n).

    For large n this is about 2.8 sd / sqrt(n) at 95% and 80% power (1.96 + 0.84).
    """
    if n < 2 or not np.isfinite(sd):
        return float("nan")
    df = n - 1
    return float((stats.t.ppf(0.5 + level / 2, df) + stats.t.ppf(power, df)) * sd / math.sqrt(n))


def bootstrap_mean(values: Sequence[float], level: float = LEVEL, n_boot: int = 4000, seed: int = 0) -> Interval:
    """Mean and percentile-bootstrap interval over seeds. It stays within the range of the data, so an
    accuracy interval never runs past 0% or 100% (a t interval over a few bimodal values can)."""
    v = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(v.mean()), float(lo), float(hi), float(v.std(ddof=1)) if len(v) > 1 else float("nan"), len(v))


def seeds_and_items(scores: np.ndarray, level: float = LEVEL, n_boot: int = 4000, seed: int = 0) -> Interval:
    """Mean of a (seeds, items) matrix with a two-way bootstrap interval: seeds and test items are
    resampled independently, so the interval covers both the seed-to-seed variation and the sampling
    error of the test set.

    ``scores[s, i]`` is, for example, 1.0 where the model of seed s misclassifies test item i (an
    error rate), or the per-item difference between two arms (a paired comparison): pass
    ``errors_a - errors_b`` and the interval is that of the paired difference.
    """
    x = np.asarray(scores, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"expected a (seeds, items) matrix, got shape {x.shape}")
    s, n = x.shape
    rng = np.random.default_rng(seed)
    # A resample's mean is sum_ij c_i x_ij d_j / (s n), with c and d the multinomial counts of how often
    # each seed and each item was drawn: no need to build the resampled matrices.
    c = rng.multinomial(s, np.full(s, 1 / s), size=n_boot).astype(float)
    d = rng.multinomial(n, np.full(n, 1 / n), size=n_boot).astype(float)
    means = np.einsum("bs,sn,bn->b", c, x, d) / (s * n)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    per_seed = x.mean(axis=1)
    return Interval(float(x.mean()), float(lo), float(hi), float(per_seed.std(ddof=1)) if s > 1 else float("nan"), s)


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test of two classifiers on the same items."""

    only_a_wrong: int  # items that a gets wrong and b right
    only_b_wrong: int  # items that b gets wrong and a right
    p_value: float


def mcnemar(wrong_a: Sequence[bool], wrong_b: Sequence[bool]) -> McNemar:
    """Two-sided exact McNemar test: under 'a and b err equally often', each discordant item is equally
    likely to go either way, so the count of one kind is Binomial(discordant, 1/2)."""
    a, b = np.asarray(wrong_a, dtype=bool), np.asarray(wrong_b, dtype=bool)
    n_a, n_b = int((a & ~b).sum()), int((~a & b).sum())
    p = 1.0 if n_a + n_b == 0 else float(stats.binomtest(n_a, n_a + n_b, 0.5).pvalue)
    return McNemar(n_a, n_b, p)


def wilson(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; it never leaves [0, 1]."""
    if n == 0:
        return float("nan"), float("nan")
    z = float(stats.norm.ppf(0.5 + level / 2))
    phat = successes / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)

