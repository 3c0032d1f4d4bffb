"""Confidence intervals for the proportions the analytics report (failure rates, success chances).

The Wilson score interval rather than the textbook normal one: it stays inside [0, 1] and keeps
a sane width at the small counts and extreme rates that retry tails and high concurrency levels
have (the normal interval says "0% ± 0%" for 0 successes in 5 trials).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile: a two-sided 95% interval


@dataclass(frozen=True, slots=True)
class Proportion:
    """`hits` out of `total`, with its rate and 95% Wilson interval (None when total is 0)."""

    hits: int
    total: int

    @property
    def rate(self) -> float | None:
        return self.hits / self.total if self.total else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.hits, self.total)


def wilson_interval(hits: int, total: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of hits/total; None when there are no trials."""
    if total <= 0:
        return None
    if not 0 <= hits <= total:
        raise ValueError(f"hits must lie in [0, {total}], got {hits}")
    rate = hits / total
    z2 = z * z
    centre = (rate + z2 / (2 * total)) / (1 + z2 / total)
    half = z * math.sqrt(rate * (1 - rate) / total + z2 / (4 * total * total)) / (1 + z2 / total)
    # At 0 or all hits the bound is exactly the rate in real arithmetic, not in floating point.
    low = 0.0 if hits == 0 else max(0.0, centre - half)
    high = 1.0 if hits == total else min(1.0, centre + half)
    return low, high
