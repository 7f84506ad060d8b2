"""Payments by replay key: claimed once, then settled or rejected, never both."""

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg

from protocol.models import payment_ref_for
from store.errors import (
    ChallengeAlreadyUsed,
    InvalidTransition,
    NotFound,
    ReplayKeyTaken,
    SettlementTxAlreadyUsed,
    StoreError,
)
from store.records import (
    ClaimOutcome,
    PaymentClaim,
    PaymentRecord,
    PaymentStatus,
    normalize_tx_hash,
)
from store.writes import write_row

logger = logging.getLogger(__name__)

# Each change logs its transition event in the same statement, so the audit
# trail can never miss a change that committed.
_CLAIM = """
with claimed as (
    insert into x402_payments (
        replay_key, challenge_id, settlement_tx_hash, payer, recipient, token,
        amount, network, proof_digest, evidence
    ) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    on conflict (replay_key) do nothing
    returning *
), logged as (
    insert into x402_payment_events (signal, payment_ref)
    select 'payment_pending', payment_ref from claimed
)
select * from claimed
"""
_SETTLE = """
with settled as (
    update x402_payments set
        status = 'settled', settlement_tx_hash = coalesce(settlement_tx_hash, $2),
        finality = $3, receipt = $4, evidence = coalesce($5, evidence),
        settled_at = now(), updated_at = now()
    where replay_key = $1 and status = 'pending'
        and ($2::text is null or settlement_tx_hash is null or settlement_tx_hash = $2)
    returning *
), logged as (
    insert into x402_payment_events (signal, payment_ref)
    select 'payment_settled', payment_ref from settled
)
select * from settled
"""
_REJECT = """
with rejected as (
    update x402_payments set
        status = 'rejected', reason_code = $2, reason_detail = $3, updated_at = now()
    where replay_key = $1 and status = 'pending'
    returning *
), logged as (
    insert into x402_payment_events (signal, payment_ref, reason)
    select 'payment_rejected', payment_ref, reason_code from rejected
)
select * from rejected
"""
_SET_TX_HASH = """
update x402_payments set settlement_tx_hash = $2, updated_at = now()
where replay_key = $1 and status = 'pending' and settlement_tx_hash is null
returning *
"""


def digest_payload(payload: dict[str, Any]) -> str:
    """sha256 hex of a payment payload's canonical JSON: its ``proof_digest``."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def claim_payment(conn: asyncpg.Connection, claim: PaymentClaim) -> ClaimOutcome:
    """Record a pending payment; the same payment again returns its first row.

    Raises ReplayKeyTaken, ChallengeAlreadyUsed or SettlementTxAlreadyUsed when
    the claim collides with a different payment. Two concurrent claims of one
    replay key serialize on its primary key: one inserts, the other sees it.
    """
    ref = claim.payment_ref
    row = await write_row(
        conn,
        _CLAIM,
        claim.replay_key,
        claim.challenge_id,
        claim.settlement_tx_hash,
        claim.payer,
        claim.recipient,
        claim.token,
        claim.amount,
        claim.network,
        claim.proof_digest,
        claim.evidence,
        violations={
            "x402_payments_challenge_id_key": lambda: ChallengeAlreadyUsed(
                f"challenge {claim.challenge_id} backs another payment", payment_ref=ref
            ),
            "x402_payments_settlement_tx_hash_key": _tx_taken(
                claim.settlement_tx_hash, claim.replay_key
            ),
        },
    )
    if row is not None:
        logger.debug("replay key claimed payment_ref=%s", ref)
        return ClaimOutcome(payment=PaymentRecord.from_row(row), repeat=False)

    return await _repeat_claim(conn, claim)


async def get_payment(
    conn: asyncpg.Connection, replay_key: str
) -> PaymentRecord | None:
    """The payment claimed under ``replay_key``, if any."""
    row = await conn.fetchrow(
        "select * from x402_payments where replay_key = $1", replay_key
    )
    return None if row is None else PaymentRecord.from_row(row)


async def get_payment_by_ref(
    conn: asyncpg.Connection, payment_ref: str
) -> PaymentRecord | None:
    """The payment with reference ``payment_ref`` (``pay_<replayKey>``), if any."""
    row = await conn.fetchrow(
        "select * from x402_payments where payment_ref = $1", payment_ref
    )
    return None if row is None else PaymentRecord.from_row(row)


async def mark_payment_settled(
    conn: asyncpg.Connection,
    replay_key: str,
    *,
    settlement_tx_hash: str | None,
    finality: str,
    receipt: dict[str, Any] | None,
    evidence: dict[str, Any] | None = None,
) -> PaymentRecord:
    """Settle a pending payment; settling it again is a no-op that returns it.

    ``settlement_tx_hash`` None keeps the hash already recorded (legacy
    settlement has none). A rejected payment, or a different hash than the one
    claimed, raises InvalidTransition.
    """
    tx_hash = (
        None if settlement_tx_hash is None else normalize_tx_hash(settlement_tx_hash)
    )
    row = await write_row(
        conn,
        _SETTLE,
        replay_key,
        tx_hash,
        finality,
        receipt,
        evidence,
        violations={
            "x402_payments_settlement_tx_hash_key": _tx_taken(tx_hash, replay_key)
        },
    )
    if row is not None:
        logger.debug("payment settled replay_key=%s finality=%s", replay_key, finality)
        return PaymentRecord.from_row(row)

    current = await _require(conn, replay_key)
    if current.status is PaymentStatus.SETTLED and tx_hash in (
        None,
        current.settlement_tx_hash,
    ):
        return current
    raise _refused(current, "settled", tx_hash)


async def mark_payment_rejected(
    conn: asyncpg.Connection, replay_key: str, *, reason_code: str, reason_detail: str
) -> PaymentRecord:
    """Reject a pending payment; rejecting it again is a no-op that returns it.

    The first reason stays. A settled payment raises InvalidTransition.
    """
    row = await conn.fetchrow(_REJECT, replay_key, reason_code, reason_detail)
    if row is not None:
        logger.debug(
            "payment rejected replay_key=%s reason=%s", replay_key, reason_code
        )
        return PaymentRecord.from_row(row)

    current = await _require(conn, replay_key)
    if current.status is PaymentStatus.REJECTED:
        return current
    raise _refused(current, "rejected", None)


async def set_settlement_tx_hash(
    conn: asyncpg.Connection, replay_key: str, settlement_tx_hash: str
) -> PaymentRecord:
    """Record the transaction of a pending payment claimed before it was known."""
    tx_hash = normalize_tx_hash(settlement_tx_hash)
    row = await write_row(
        conn,
        _SET_TX_HASH,
        replay_key,
        tx_hash,
        violations={
            "x402_payments_settlement_tx_hash_key": _tx_taken(tx_hash, replay_key)
        },
    )
    if row is not None:
        return PaymentRecord.from_row(row)

    current = await _require(conn, replay_key)
    if current.settlement_tx_hash == tx_hash:
        return current
    raise _refused(current, "given a settlement tx", tx_hash)


async def list_payments(
    conn: asyncpg.Connection,
    *,
    status: PaymentStatus | None = None,
    older_than: timedelta | None = None,
    limit: int = 100,
) -> list[PaymentRecord]:
    """Payments oldest first, e.g. pending ones older than a minute for reconcile."""
    rows = await conn.fetch(
        "select * from x402_payments"
        " where ($1::text is null or status = $1)"
        " and ($2::interval is null or created_at < now() - $2)"
        " order by created_at, replay_key limit $3",
        status,
        older_than,
        limit,
    )
    return [PaymentRecord.from_row(row) for row in rows]


async def oldest_pending_age_seconds(conn: asyncpg.Connection) -> float:
    """Age of the oldest pending payment, 0.0 when none waits: the alerting gauge."""
    age = await conn.fetchval(
        "select extract(epoch from now() - min(created_at))::float8"
        " from x402_payments where status = 'pending'"
    )
    return age or 0.0


async def _repeat_claim(conn: asyncpg.Connection, claim: PaymentClaim) -> ClaimOutcome:
    """The replay key is taken: the same payment again, or a different one."""
    existing = await get_payment(conn, claim.replay_key)
    if existing is None:
        # Only a snapshot older than the winning claim gets here (REPEATABLE READ).
        raise StoreError(f"replay key {claim.replay_key} claimed concurrently; retry")

    if existing.proof_digest != claim.proof_digest:
        raise ReplayKeyTaken(
            f"replay key {claim.replay_key} was claimed by a different payload",
            payment_ref=existing.payment_ref,
        )
    logger.debug("replay key claimed again payment_ref=%s", existing.payment_ref)
    return ClaimOutcome(payment=existing, repeat=True)


async def _require(conn: asyncpg.Connection, replay_key: str) -> PaymentRecord:
    """The payment, or NotFound."""
    payment = await get_payment(conn, replay_key)
    if payment is None:
        raise NotFound(f"no payment with replay key {replay_key}")
    return payment


def _tx_taken(tx_hash: str | None, replay_key: str) -> Callable[[], StoreError]:
    """The error for a settlement tx that already pays another payment."""
    return lambda: SettlementTxAlreadyUsed(
        f"tx {tx_hash} pays another payment", payment_ref=payment_ref_for(replay_key)
    )


def _refused(current: PaymentRecord, wanted: str, tx_hash: str | None) -> StoreError:
    """InvalidTransition saying where the payment stands."""
    detail = f" with tx {current.settlement_tx_hash}" if tx_hash else ""
    ref = current.payment_ref
    return InvalidTransition(
        f"payment {ref} is {current.status}{detail}; cannot be {wanted}",
        payment_ref=current.payment_ref,
    )
