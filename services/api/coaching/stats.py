"""Team statistics of a KPI: the median and a rep's percentile among the reps with a value."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from statistics import median


class Distribution:
    """The values of one KPI over a team's reps (reps without a value are left out)."""

    __slots__ = ("_sorted",)

    def __init__(self, values: Iterable[float | None]) -> None:
        self._sorted = sorted(v for v in values if v is not None)

    def __len__(self) -> int:
        return len(self._sorted)

    @property
    def median(self) -> float | None:
        """The median, None with no values."""
        return round(median(self._sorted), 6) if self._sorted else None

    def percentile(self, value: float | None) -> float | None:
        """Share of the values below `value`, ties counted half, in percent (mid-rank)."""
        if value is None or not self._sorted:
            return None
        below = bisect_left(self._sorted, value)
        equal = bisect_right(self._sorted, value) - below
        return round(100 * (below + equal / 2) / len(self._sorted), 2)
