"""Token-bucket rate limits per attempt and per client address.

Per process: with several ingest processes behind one port, each enforces its own
buckets, so the effective limit is the process count times the configured one.
"""

from __future__ import annotations

from collections import OrderedDict


class TokenBuckets:
    """`rate` tokens a second up to `burst`, per key; the least recently seen keys are
    forgotten past `capacity` (a forgotten key starts again with a full bucket)."""

    def __init__(self, rate: float, burst: float, capacity: int = 200_000) -> None:
        self.rate = rate
        self.burst = burst
        self.capacity = capacity
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, now: float) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (1.0 - tokens) / self.rate
        if len(self._buckets) > self.capacity:
            self._buckets.popitem(last=False)
        return wait
