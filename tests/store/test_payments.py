"""Claims about store.payments: one replay key, one payment, one transaction."""

import asyncio
from datetime import timedelta

import asyncpg
import pytest

from store.errors import (
    ChallengeAlreadyUsed,
    InvalidTransition,
    NotFound,
    ReplayKeyTaken,
    SettlementTxAlreadyUsed,
)
from store.events import list_events
from store.payments import (
    claim_payment,
    digest_payload,
    get_payment,
    get_payment_by_ref,
    list_payments,
    mark_payment_rejected,
    mark_payment_settled,
    oldest_pending_age_seconds,
    set_settlement_tx_hash,
)
from store.pool import transaction
from store.records import (
    U256_MAX,
    ClaimOutcome,
    PaymentClaim,
    PaymentStatus,
    normalize_tx_hash,
)
from tests.factories import TX_HASH
from tests.store.builders import digest, insert_payment, make_claim

RECEIPT = {"paymentRef": "pay_rk_1", "signature": "ab" * 32}


async def claim_in_transaction(pool: asyncpg.Pool, claim: PaymentClaim) -> ClaimOutcome:
    async with transaction(pool) as conn:
        return await claim_payment(conn, claim)


async def test_claim_payment_inserts_a_pending_row(db_pool: asyncpg.Pool) -> None:
    claim = make_claim("rk_1", settlement_tx_hash=TX_HASH)

    async with db_pool.acquire() as conn:
        outcome = await claim_payment(conn, claim)

    assert not outcome.repeat
    assert outcome.payment.payment_ref == "pay_rk_1"
    assert outcome.payment.status is PaymentStatus.PENDING
    assert outcome.payment.settlement_tx_hash == TX_HASH


async def test_claim_payment_logs_the_pending_transition(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await claim_payment(conn, make_claim("rk_1"))

        events = await list_events(conn, payment_ref="pay_rk_1")

    assert [event.signal for event in events] == ["payment_pending"]


async def test_same_payment_claimed_again_returns_the_existing_row(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        first = await claim_payment(conn, make_claim("rk_1"))

        again = await claim_payment(conn, make_claim("rk_1"))

    assert again.repeat
    assert again.payment == first.payment


async def test_replay_key_claimed_with_a_different_payload_is_refused(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await claim_payment(conn, make_claim("rk_1"))
        other = make_claim("rk_1", proof_digest=digest("another payload"))

        with pytest.raises(ReplayKeyTaken) as refused:
            await claim_payment(conn, other)

    assert refused.value.reason == "REPLAY_DETECTED"
    assert refused.value.payment_ref == "pay_rk_1"


async def test_challenge_under_another_replay_key_is_refused(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await claim_payment(conn, make_claim("rk_1", challenge_id="ch_shared"))

        with pytest.raises(ChallengeAlreadyUsed) as refused:
            await claim_payment(conn, make_claim("rk_2", challenge_id="ch_shared"))

    assert refused.value.reason == "REPLAY_DETECTED"


async def test_settlement_tx_under_another_replay_key_is_refused(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await claim_payment(conn, make_claim("rk_1", settlement_tx_hash=TX_HASH))

        with pytest.raises(SettlementTxAlreadyUsed) as refused:
            await claim_payment(conn, make_claim("rk_2", settlement_tx_hash=TX_HASH))

    assert refused.value.reason == "REPLAY_DETECTED"


@pytest.mark.parametrize(
    "spelling",
    [
        TX_HASH.upper().replace("0X", "0x"),
        "0x" + TX_HASH[2:].zfill(64),
        "0X" + TX_HASH[2:],
    ],
    ids=["upper-case", "zero-padded", "capital-prefix"],
)
async def test_settlement_tx_in_another_spelling_is_refused(
    db_pool: asyncpg.Pool, spelling: str
) -> None:
    async with db_pool.acquire() as conn:
        await claim_payment(conn, make_claim("rk_1", settlement_tx_hash=TX_HASH))

        with pytest.raises(SettlementTxAlreadyUsed):
            await claim_payment(conn, make_claim("rk_2", settlement_tx_hash=spelling))


async def test_concurrent_claims_of_one_payment_insert_it_once(
    db_pool: asyncpg.Pool,
) -> None:
    claim = make_claim("rk_race")

    outcomes = await asyncio.gather(
        claim_in_transaction(db_pool, claim), claim_in_transaction(db_pool, claim)
    )

    assert sorted(outcome.repeat for outcome in outcomes) == [False, True]
    assert outcomes[0].payment == outcomes[1].payment


async def test_concurrent_claims_with_different_payloads_refuse_one(
    db_pool: asyncpg.Pool,
) -> None:
    first = make_claim("rk_race", proof_digest=digest("payload A"))
    second = make_claim("rk_race", proof_digest=digest("payload B"))

    results = await asyncio.gather(
        claim_in_transaction(db_pool, first),
        claim_in_transaction(db_pool, second),
        return_exceptions=True,
    )

    kinds = sorted(type(result).__name__ for result in results)
    assert kinds == ["ClaimOutcome", "ReplayKeyTaken"]


async def test_claim_waiting_on_an_uncommitted_claim_sees_it_after_commit(
    db_pool: asyncpg.Pool,
) -> None:
    claim = make_claim("rk_race")
    async with db_pool.acquire() as winner_conn:
        winner_tx = winner_conn.transaction()
        await winner_tx.start()
        await claim_payment(winner_conn, claim)
        waiting = asyncio.create_task(claim_in_transaction(db_pool, claim))
        await asyncio.sleep(0.1)
        still_blocked = not waiting.done()

        await winner_tx.commit()
        outcome = await waiting

    assert still_blocked
    assert outcome.repeat


async def test_refused_claim_leaves_the_callers_transaction_usable(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await claim_payment(conn, make_claim("rk_1", challenge_id="ch_shared"))

        async with conn.transaction():
            with pytest.raises(ChallengeAlreadyUsed):
                await claim_payment(conn, make_claim("rk_2", challenge_id="ch_shared"))
            still_usable = await conn.fetchval("select 1")

    assert still_usable == 1


async def test_claim_amount_round_trips_the_largest_u256(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await claim_payment(conn, make_claim("rk_1", amount=U256_MAX))

        payment = await get_payment(conn, "rk_1")

    assert payment is not None
    assert payment.amount == U256_MAX


async def test_get_payment_of_unknown_replay_key_returns_none(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        payment = await get_payment(conn, "rk_unknown")

    assert payment is None


async def test_get_payment_by_ref_finds_the_claimed_payment(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        claimed = await insert_payment(conn, "rk_1")

        found = await get_payment_by_ref(conn, "pay_rk_1")

    assert found == claimed


async def test_mark_payment_settled_records_receipt_and_finality(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_payment(conn, "rk_1")

        settled = await mark_payment_settled(
            conn,
            "rk_1",
            settlement_tx_hash=TX_HASH,
            finality="ACCEPTED_ON_L2",
            receipt=RECEIPT,
            evidence={"transfer": "checked"},
        )

    assert settled.status is PaymentStatus.SETTLED
    assert settled.settlement_tx_hash == TX_HASH
    assert (settled.finality, settled.receipt) == ("ACCEPTED_ON_L2", RECEIPT)
    assert settled.evidence == {"transfer": "checked"}
    assert settled.settled_at is not None


async def test_settling_a_settled_payment_again_is_a_no_op(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_payment(conn, "rk_1", settlement_tx_hash=TX_HASH)
        first = await mark_payment_settled(
            conn,
            "rk_1",
            settlement_tx_hash=TX_HASH,
            finality="ACCEPTED_ON_L2",
            receipt=RECEIPT,
        )

        again = await mark_payment_settled(
            conn,
            "rk_1",
            settlement_tx_hash=None,
            finality="ACCEPTED_ON_L1",
            receipt=None,
        )

    assert again == first


async def test_settling_with_another_tx_than_claimed_is_refused(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_payment(conn, "rk_1", settlement_tx_hash=TX_HASH)

        with pytest.raises(InvalidTransition):
            await mark_payment_settled(
                conn,
                "rk_1",
                settlement_tx_hash="0xabc",
                finality="ACCEPTED_ON_L2",
                receipt=RECEIPT,
            )


async def test_settling_with_a_tx_that_pays_another_payment_is_refused(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_payment(conn, "rk_1", settlement_tx_hash=TX_HASH)
        await insert_payment(conn, "rk_2")

        with pytest.raises(SettlementTxAlreadyUsed):
            await mark_payment_settled(
                conn,
                "rk_2",
                settlement_tx_hash=TX_HASH,
                finality="ACCEPTED_ON_L2",
                receipt=RECEIPT,
            )


async def test_settled_payment_cannot_be_rejected(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        await insert_payment(conn, "rk_1", settlement_tx_hash=TX_HASH)
        await mark_payment_settled(
            conn,
            "rk_1",
            settlement_tx_hash=None,
            finality="ACCEPTED_ON_L2",
            receipt=RECEIPT,
        )

        with pytest.raises(InvalidTransition):
            await mark_payment_rejected(
                conn, "rk_1", reason_code="TIMEOUT", reason_detail="too late"
            )


async def test_rejected_payment_cannot_be_settled(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        await insert_payment(conn, "rk_1", settlement_tx_hash=TX_HASH)
        await mark_payment_rejected(
            conn, "rk_1", reason_code="SETTLEMENT_FAILED", reason_detail="reverted"
        )

        with pytest.raises(InvalidTransition):
            await mark_payment_settled(
                conn,
                "rk_1",
                settlement_tx_hash=None,
                finality="ACCEPTED_ON_L2",
                receipt=RECEIPT,
            )


async def test_rejecting_a_rejected_payment_again_keeps_the_first_reason(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_payment(conn, "rk_1")
        first = await mark_payment_rejected(
            conn, "rk_1", reason_code="SETTLEMENT_FAILED", reason_detail="reverted"
        )

        again = await mark_payment_rejected(
            conn, "rk_1", reason_code="TIMEOUT", reason_detail="too late"
        )

    assert again == first
    assert again.reason_code == "SETTLEMENT_FAILED"


async def test_marking_an_unknown_payment_raises_not_found(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        with pytest.raises(NotFound):
            await mark_payment_rejected(
                conn, "rk_unknown", reason_code="TIMEOUT", reason_detail="too late"
            )


async def test_set_settlement_tx_hash_stores_the_normalized_hash(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_payment(conn, "rk_1")

        payment = await set_settlement_tx_hash(conn, "rk_1", "0x000ABC")

    assert payment.settlement_tx_hash == "0xabc"


async def test_set_settlement_tx_hash_paying_another_payment_is_refused(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_payment(conn, "rk_1", settlement_tx_hash=TX_HASH)
        await insert_payment(conn, "rk_2")

        with pytest.raises(SettlementTxAlreadyUsed):
            await set_settlement_tx_hash(conn, "rk_2", TX_HASH)


async def test_list_payments_returns_old_pending_payments_oldest_first(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        for key, minutes in [("rk_new", 0), ("rk_old", 30), ("rk_older", 60)]:
            await insert_payment(conn, key)
            await conn.execute(
                "update x402_payments set created_at = now() - $2::int * interval '1m'"
                " where replay_key = $1",
                key,
                minutes,
            )
        await mark_payment_rejected(
            conn, "rk_older", reason_code="TIMEOUT", reason_detail="too late"
        )

        pending = await list_payments(
            conn, status=PaymentStatus.PENDING, older_than=timedelta(minutes=5)
        )

    assert [payment.replay_key for payment in pending] == ["rk_old"]


async def test_oldest_pending_age_measures_the_oldest_pending_payment(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_payment(conn, "rk_old")
        await insert_payment(conn, "rk_new")
        await conn.execute(
            "update x402_payments set created_at = now() - interval '90 seconds'"
            " where replay_key = 'rk_old'"
        )

        age = await oldest_pending_age_seconds(conn)

    assert 89 < age < 120


async def test_oldest_pending_age_is_zero_when_nothing_waits(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        age = await oldest_pending_age_seconds(conn)

    assert age == 0.0


@pytest.mark.parametrize(
    ("spelling", "normalized"),
    [
        ("0xABC", "0xabc"),
        ("0x000abc", "0xabc"),
        ("0X0", "0x0"),
        ("0x" + "0" * 64, "0x0"),
    ],
)
def test_normalize_tx_hash_gives_one_spelling(spelling: str, normalized: str) -> None:
    result = normalize_tx_hash(spelling)

    assert result == normalized


@pytest.mark.parametrize("text", ["abc", "0x", "0xg1", "0x" + "1" * 65, " 0x1"])
def test_normalize_tx_hash_refuses_what_is_not_a_hash(text: str) -> None:
    with pytest.raises(ValueError):
        normalize_tx_hash(text)


async def test_table_refuses_a_tx_hash_that_is_not_normalized(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_payment(conn, "rk_1")

        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "update x402_payments set settlement_tx_hash = '0x00ABC'"
            )


def test_digest_payload_ignores_key_order() -> None:
    payload = {"replayKey": "rk_1", "amount": "100"}

    digests = {digest_payload(payload), digest_payload(dict(reversed(payload.items())))}

    assert len(digests) == 1
