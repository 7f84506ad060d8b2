"""Durable Idempotency-Keys of POST /runs: reserved before any work, then answered."""

import logging
from typing import Any

import asyncpg

from store.errors import InvalidTransition, NotFound, StoreError
from store.records import (
    IdempotencyRecord,
    IdempotencyState,
    Reservation,
    ReservationOutcome,
)
from store.writes import write_row

logger = logging.getLogger(__name__)

# A released key can vanish between our insert and our read; a few tries settle it.
_RESERVE_ATTEMPTS = 3

_RESERVE = """
insert into idempotency_keys (actor, key, request_hash) values ($1, $2, $3)
on conflict (actor, key) do nothing
returning *
"""
_COMPLETE = """
update idempotency_keys set
    state = 'done', response_status = $3, response_body = $4, run_id = $5,
    updated_at = now()
where actor = $1 and key = $2 and state = 'in_flight'
returning *
"""

# Known limitation: a request that dies between reserving and completing leaves
# its key in flight for good, so retries with that key answer 409 until an
# operator deletes the row. Expiring in-flight reservations after a deadline
# would fix it, at the risk of a late first request finishing after all.


async def reserve_idempotency_key(
    conn: asyncpg.Connection, actor: str, key: str, request_hash: str
) -> Reservation:
    """Reserve ``key`` for ``actor``, or say what an earlier request left there.

    Concurrent reservations of one key serialize on its primary key: exactly
    one gets ``new``, the others ``in_flight`` (or ``replay`` once it is done).
    """
    for _ in range(_RESERVE_ATTEMPTS):
        row = await conn.fetchrow(_RESERVE, actor, key, request_hash)
        if row is not None:
            logger.debug("idempotency key reserved actor=%s", actor)
            record = IdempotencyRecord.from_row(row)
            return Reservation(outcome=ReservationOutcome.NEW, record=record)

        existing = await get_idempotency_key(conn, actor, key)
        if existing is not None:
            outcome = _outcome(existing, request_hash)
            return Reservation(outcome=outcome, record=existing)
    raise StoreError(f"idempotency key {key} kept changing while reserved; retry")


async def complete_idempotency_key(
    conn: asyncpg.Connection,
    actor: str,
    key: str,
    *,
    status: int,
    body: Any,
    run_id: str | None = None,
) -> IdempotencyRecord:
    """Store the answer of the request that reserved ``key``, for replays."""
    row = await write_row(
        conn,
        _COMPLETE,
        actor,
        key,
        status,
        body,
        run_id,
        violations={
            "idempotency_keys_run_id_fkey": lambda: NotFound(f"no run {run_id}"),
        },
    )
    if row is not None:
        return IdempotencyRecord.from_row(row)

    if await get_idempotency_key(conn, actor, key) is None:
        raise NotFound(f"idempotency key {key} is not reserved")
    raise InvalidTransition(f"idempotency key {key} is already answered")


async def release_idempotency_key(
    conn: asyncpg.Connection, actor: str, key: str
) -> bool:
    """Free a key whose request failed before any work; False if none was held.

    An answered key is kept: its answer must still replay.
    """
    deleted = await conn.fetchval(
        "delete from idempotency_keys"
        " where actor = $1 and key = $2 and state = 'in_flight' returning true",
        actor,
        key,
    )
    return bool(deleted)


async def get_idempotency_key(
    conn: asyncpg.Connection, actor: str, key: str
) -> IdempotencyRecord | None:
    """The key's row, if reserved."""
    row = await conn.fetchrow(
        "select * from idempotency_keys where actor = $1 and key = $2", actor, key
    )
    return None if row is None else IdempotencyRecord.from_row(row)


def _outcome(existing: IdempotencyRecord, request_hash: str) -> ReservationOutcome:
    """Different body first, so a reused key never leaks another request's state."""
    if existing.request_hash != request_hash:
        return ReservationOutcome.REUSED
    if existing.state is IdempotencyState.IN_FLIGHT:
        return ReservationOutcome.IN_FLIGHT
    return ReservationOutcome.REPLAY
