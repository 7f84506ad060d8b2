"""What the API's routes share: settings, the Postgres pool, the Temporal client."""

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field

import asyncpg
from temporalio.client import Client

import metrics
from api.ratelimit import RateLimiter
from protocol.models import ReasonCode
from protocol.signals import Signal
from settings import Settings
from store.pool import transaction

logger = logging.getLogger(__name__)

SIGNAL_FLUSH_SECONDS = 2.0

_FLUSH = """
insert into x402_payment_events (signal)
select $1 from generate_series(1, $2)
"""


@dataclass
class SignalLog:
    """Signals the API counts on paths that must not wait for Postgres.

    Counted in Prometheus at once and written to the event log in batches.
    Known limitation: counts from the last flush interval are lost if the API
    process dies; the Prometheus counter of that process had them.
    """

    pending: Counter[Signal] = field(default_factory=Counter)

    def count(self, signal: Signal, reason: ReasonCode | None = None) -> None:
        metrics.count_signal(signal, reason)
        self.pending[signal] += 1

    async def flush(self, pool: asyncpg.Pool) -> None:
        batch, self.pending = self.pending, Counter()
        if not batch:
            return
        try:
            async with transaction(pool) as conn:
                for signal, n in batch.items():
                    await conn.execute(_FLUSH, signal.value, n)
        except Exception:
            # Keep the counts for the next try rather than lose them.
            self.pending.update(batch)
            raise


@dataclass
class Services:
    """Created once per process by the app's lifespan."""

    settings: Settings
    pool: asyncpg.Pool
    temporal: Client
    limiter: RateLimiter
    signals: SignalLog = field(default_factory=SignalLog)
    _flusher: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_forever())

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        try:
            await self.signals.flush(self.pool)
        finally:
            await self.pool.close()

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(SIGNAL_FLUSH_SECONDS)
            try:
                await self.signals.flush(self.pool)
            except Exception as error:
                logger.warning("signal flush failed error=%s", error)
