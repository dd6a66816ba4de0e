"""Token buckets: a burst, then one request per 1/rate seconds, with the wait told."""

from __future__ import annotations

import pytest

from ingest.limits import TokenBuckets


def test_a_burst_then_the_rate() -> None:
    buckets = TokenBuckets(rate=2.0, burst=3.0)
    assert [buckets.take("a", 100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", 100.0) == pytest.approx(0.5)
    assert buckets.take("a", 100.5) == 0.0  # one token back after half a second
    assert buckets.take("b", 100.5) == 0.0  # other keys are unaffected


def test_a_bucket_refills_only_to_its_burst() -> None:
    buckets = TokenBuckets(rate=1.0, burst=2.0)
    buckets.take("a", 0.0)
    assert [buckets.take("a", 1000.0) for _ in range(3)][-1] == pytest.approx(1.0)


def test_forgotten_keys_start_full_and_memory_is_bounded() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1.0, capacity=10)
    for n in range(100):
        buckets.take(str(n), 0.0)
    assert len(buckets._buckets) == 10
    assert buckets.take("0", 0.0) == 0.0
