"""The append-only payment event log: audit trail and cluster-wide signal counts."""

import logging
from datetime import datetime
from typing import Any

import asyncpg

from protocol.signals import Signal
from store.records import EventRecord, OperatorSignal

logger = logging.getLogger(__name__)

# Transitions are left out: the store logs them with the change they record.
APPENDABLE_SIGNALS = frozenset(Signal) | frozenset(OperatorSignal)

_APPEND = """
insert into x402_payment_events (signal, payment_ref, run_id, reason, detail)
values ($1, $2, $3, $4, $5)
returning *
"""
_COUNT = """
select signal, count(*) as n from x402_payment_events
where kind = 'signal' and ($1::timestamptz is null or created_at >= $1)
group by signal
"""
_LIST = """
select * from x402_payment_events
where ($1::text is null or payment_ref = $1) and ($2::text is null or run_id = $2)
order by event_id
limit $3
"""


async def append_event(
    conn: asyncpg.Connection,
    *,
    signal: str,
    payment_ref: str | None = None,
    run_id: str | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> EventRecord:
    """Append one event: a protocol Signal or an OperatorSignal."""
    # The table checks this too; here a typo fails with its own name.
    if signal not in APPENDABLE_SIGNALS:
        raise ValueError(f"unknown event signal: {signal!r}")

    row = await conn.fetchrow(_APPEND, signal, payment_ref, run_id, reason, detail)
    logger.debug("event appended signal=%s payment_ref=%s", signal, payment_ref)
    return EventRecord.from_row(row)


async def count_signals(
    conn: asyncpg.Connection, *, since: datetime | None = None
) -> dict[str, int]:
    """Count of each of the twelve signals since ``since`` (all time if None)."""
    rows = await conn.fetch(_COUNT, since)
    counts = {signal.value: 0 for signal in Signal}
    counts.update({row["signal"]: row["n"] for row in rows})
    return counts


async def list_events(
    conn: asyncpg.Connection,
    *,
    payment_ref: str | None = None,
    run_id: str | None = None,
    limit: int = 100,
) -> list[EventRecord]:
    """Events of a payment and/or a run, oldest first: their audit trail."""
    rows = await conn.fetch(_LIST, payment_ref, run_id, limit)
    return [EventRecord.from_row(row) for row in rows]
