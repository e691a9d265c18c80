"""Uncertainty for every number that gets compared: intervals and a paired test, stdlib only.

- `wilson_interval`: one run's accuracy (k correct of n) as a 95 % Wilson score interval; unlike
  the normal approximation it stays inside [0, 1] and is honest at 0 % and 100 %.
- `mean_interval`: mean ± Student-t interval over seeds (few seeds give wide intervals, as
  they should).
- `paired_t_test`: two methods on the same units (questions, or seeds of matched runs); the
  differences' mean, t, two-sided p-value and interval. Equivalent to R's `t.test(a, b,
  paired = TRUE)`.

The t distribution comes from the regularised incomplete beta function (Numerical Recipes'
continued fraction), so no scipy is needed.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Optional, Sequence


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: Optional[float]  # None when the data cannot give an interval (a single seed)
    high: Optional[float]

    @property
    def half_width(self) -> Optional[float]:
        return None if self.low is None or self.high is None else (self.high - self.low) / 2

    def scaled(self, factor: float) -> "Interval":
        """The same interval in other units (e.g. a proportion as percent)."""
        scale = (lambda v: None if v is None else v * factor)
        return Interval(self.estimate * factor, scale(self.low), scale(self.high))


@dataclass(frozen=True)
class PairedTest:
    n: int
    mean_difference: float  # mean of a - b
    t: float
    df: int
    p_value: float  # two-sided
    interval: Interval  # of the mean difference


def _two_sided(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return 1.0 - (1.0 - confidence) / 2.0


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval of a proportion successes / n."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes} of {n}")
    z = statistics.NormalDist().inv_cdf(_two_sided(confidence))
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At 0 and n the bound is exactly 0 (or 1); the formula leaves rounding dust there.
    low = 0.0 if successes == 0 else centre - half
    high = 1.0 if successes == n else centre + half
    return Interval(p, low, high)


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)), -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularised incomplete beta function."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    # The continued fraction converges fast only for x < (a+1)/(a+b+2); use the symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"df must be positive, got {df}")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * regularized_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p (bisection on `t_cdf`; exact to ~1e-10)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, high * 2.0
    for _ in range(200):
        mid = (low + high) / 2.0
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2.0


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean ± Student-t interval; one value gives its mean with no interval."""
    if not values:
        raise ValueError("mean_interval needs at least one value")
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Interval(mean, None, None)
    half = t_quantile(_two_sided(confidence), len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return Interval(mean, mean - half, mean + half)


def normal_interval(estimate: float, standard_error: float, confidence: float = 0.95) -> tuple[Interval, float]:
    """estimate ± z · SE and the two-sided normal p of estimate against 0 (SE > 0)."""
    normal = statistics.NormalDist()
    half = normal.inv_cdf(_two_sided(confidence)) * standard_error
    return Interval(estimate, estimate - half, estimate + half), 2.0 * (1.0 - normal.cdf(abs(estimate) / standard_error))


def paired_t_test(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> PairedTest:
    """Paired t-test of a against b (same units, same order), two-sided."""
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} and {len(b)}")
    if len(a) < 2:
        raise ValueError("a paired t-test needs at least two pairs")
    differences = [x - y for x, y in zip(a, b)]
    n, df = len(differences), len(differences) - 1
    mean = statistics.fmean(differences)
    se = statistics.stdev(differences) / math.sqrt(n)
    if se == 0.0:  # every pair differs by the same amount: no spread to test against
        t = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
        return PairedTest(n, mean, t, df, 1.0 if mean == 0.0 else 0.0, Interval(mean, mean, mean))
    t = mean / se
    p_value = min(1.0, 2.0 * (1.0 - t_cdf(abs(t), df)))
    half = t_quantile(_two_sided(confidence), df) * se
    return PairedTest(n, mean, t, df, p_value, Interval(mean, mean - half, mean + half))
