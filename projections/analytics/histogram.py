"""Duration histograms with log-spaced buckets: bounded, mergeable, order-independent.

A bucket holds the durations in (BASE**(i-1), BASE**i] milliseconds, so a quantile read back is
at most 10% above the true one whatever the scale (1 ms to days fit in about 300 buckets). Adding
is a counter increment: a fold over the same durations in any order gives the same histogram,
which is what replay-safety needs; exact quantiles would need every sample.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

BASE = 1.1
_LOG_BASE = math.log(BASE)

# bucket index -> count; index 0 holds durations of at most 1 ms (clock skew included).
Histogram = dict[int, int]


def bucket_of(duration_ms: int) -> int:
    if duration_ms <= 1:
        return 0
    # The epsilon keeps exact powers of BASE in their own bucket despite floating point.
    return max(1, math.ceil(math.log(duration_ms) / _LOG_BASE - 1e-9))


def upper_bound_ms(bucket: int) -> int:
    return 1 if bucket <= 0 else math.ceil(BASE**bucket)


def add(histogram: Histogram, duration_ms: int) -> None:
    index = bucket_of(duration_ms)
    histogram[index] = histogram.get(index, 0) + 1


def merged(histograms: Iterable[Mapping[int, int]]) -> Histogram:
    total: Histogram = {}
    for histogram in histograms:
        for index, count in histogram.items():
            total[index] = total.get(index, 0) + count
    return total


def quantile_ms(histogram: Mapping[int, int], q: float) -> int | None:
    """The upper bound of the bucket holding the q-quantile; None for an empty histogram."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return upper_bound_ms(index)
    return upper_bound_ms(max(histogram))
