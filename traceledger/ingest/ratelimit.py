"""Per-enterprise event rate limits: a token bucket each, held by the capture service."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from traceledger.errors import RateLimitedError


@dataclass(slots=True)
class _Bucket:
    rate: float
    tokens: float
    updated: float


class RateLimiter:
    """`rate` events per second with a burst of one second's worth (at least one batch)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[int, _Bucket] = {}

    def take(self, enterprise_id: int, rate: float | None, events: int) -> None:
        if rate is None:
            self._buckets.pop(enterprise_id, None)
            return
        now = self._clock()
        bucket = self._buckets.get(enterprise_id)
        if bucket is None or bucket.rate != rate:
            bucket = self._buckets[enterprise_id] = _Bucket(rate, rate, now)
        bucket.tokens = min(rate, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        # A batch larger than one second's allowance may pass on a full bucket, then waits.
        if bucket.tokens >= min(events, rate):
            bucket.tokens -= events
            return
        wait = (min(events, rate) - bucket.tokens) / rate
        raise RateLimitedError(
            f"enterprise {enterprise_id} may push {rate:g} events per second; "
            f"retry in {wait:.1f} s",
            retry_after=wait,
        )
