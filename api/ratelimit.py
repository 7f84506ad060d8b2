"""Per-actor rate limits by scope: a token bucket each, in this process."""

import time
from dataclasses import dataclass

# Known limitation: buckets live in each API process, so N replicas allow N
# times the limit. A shared store (Postgres or Redis) would make it global.


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``per_minute`` requests per (scope, actor), refilled continuously."""

    def __init__(self, per_minute: int, *, max_actors: int = 100_000) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(per_minute)
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._max_actors = max_actors

    def acquire(self, scope: str, actor: str) -> float | None:
        """None when allowed; else the seconds until the next request may pass."""
        now = time.monotonic()
        key = (scope, actor)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_actors:
                self._buckets.clear()  # bounded memory beats perfect fairness
            bucket = self._buckets[key] = _Bucket(self._burst, now)

        bucket.tokens = min(
            self._burst, bucket.tokens + (now - bucket.updated) * self._rate
        )
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self._rate
