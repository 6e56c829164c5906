# SPDX-License-Identifier: Apache-2.0
"""Per-agent rate limits: a token bucket for each agent's writes (notes, progress reports).

An agent is a model that may loop: without a bound, one that posts a 20 KB
note in a tight loop fills the disk its neighbours' workspaces live on. Each
agent gets a bucket of ``burst`` tokens that refills at ``per_minute``; a
write takes one token, and a write with none left is refused with the number
of seconds after which one is there again, so the model can wait and retry.

Fifteen lines of our own rather than a dependency: the rate-limit libraries
bring storage back ends and three more packages for the same arithmetic.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float
    refused: int = 0  # writes refused in a row (the log says so once per run of refusals)


class RateLimiter:
    """``per_minute`` writes per key on average, up to ``burst`` at once; ``per_minute`` 0: no limit."""

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.burst = max(1, burst)
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> float:
        """Take one token for ``key``: 0 when the write may go ahead, else the seconds until it may."""
        if self.per_minute <= 0:
            return 0.0
        now = self.clock()
        rate = self.per_minute / 60.0
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.refused = 0
            return 0.0
        bucket.refused += 1
        return math.ceil((1.0 - bucket.tokens) / rate)

    def refused(self, key: str) -> int:
        """How many writes of ``key`` were refused since its last one that went ahead."""
        bucket = self._buckets.get(key)
        return bucket.refused if bucket else 0
