"""Claims about store.idempotency: one request per key does the work, others wait."""

import asyncio

import asyncpg
import pytest

from store.errors import InvalidTransition, NotFound
from store.idempotency import (
    complete_idempotency_key,
    get_idempotency_key,
    release_idempotency_key,
    reserve_idempotency_key,
)
from store.pool import transaction
from store.records import IdempotencyState, Reservation, ReservationOutcome
from tests.store.builders import WALLET, digest, insert_agent, insert_run

BODY_HASH = digest("request body")
OTHER_BODY_HASH = digest("another request body")
RESPONSE = {"runId": "run_1", "status": "queued"}


async def reserve_in_transaction(pool: asyncpg.Pool, key: str) -> Reservation:
    async with transaction(pool) as conn:
        return await reserve_idempotency_key(conn, WALLET, key, BODY_HASH)


async def test_reserve_idempotency_key_first_time_is_new(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        reservation = await reserve_idempotency_key(conn, WALLET, "idem_1", BODY_HASH)

    assert reservation.outcome is ReservationOutcome.NEW
    assert reservation.record.state is IdempotencyState.IN_FLIGHT
    assert reservation.record.request_hash == BODY_HASH


async def test_reserve_idempotency_key_again_while_in_flight_is_in_flight(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await reserve_idempotency_key(conn, WALLET, "idem_1", BODY_HASH)

        again = await reserve_idempotency_key(conn, WALLET, "idem_1", BODY_HASH)

    assert again.outcome is ReservationOutcome.IN_FLIGHT


async def test_reserve_idempotency_key_with_another_body_is_reused(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await reserve_idempotency_key(conn, WALLET, "idem_1", BODY_HASH)

        other = await reserve_idempotency_key(conn, WALLET, "idem_1", OTHER_BODY_HASH)

    assert other.outcome is ReservationOutcome.REUSED


async def test_reserve_idempotency_key_of_another_actor_is_new(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await reserve_idempotency_key(conn, WALLET, "idem_1", BODY_HASH)

        theirs = await reserve_idempotency_key(conn, "someone", "idem_1", BODY_HASH)

    assert theirs.outcome is ReservationOutcome.NEW


async def test_reserve_idempotency_key_after_completion_replays_the_answer(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        await insert_run(conn, run_id="run_1")
        await reserve_idempotency_key(conn, WALLET, "idem_1", BODY_HASH)
        await complete_idempotency_key(
            conn, WALLET, "idem_1", status=201, body=RESPONSE, run_id="run_1"
        )

        replay = await reserve_idempotency_key(conn, WALLET, "idem_1", BODY_HASH)
        reused = await reserve_idempotency_key(conn, WALLET, "idem_1", OTHER_BODY_HASH)

    assert replay.outcome is ReservationOutcome.REPLAY
    assert replay.record.state is IdempotencyState.DONE
    assert (replay.record.response_status, replay.record.response_body) == (
        201,
        RESPONSE,
    )
    assert replay.record.run_id == "run_1"
    assert reused.outcome is ReservationOutcome.REUSED


async def test_release_idempotency_key_lets_the_key_be_reserved_anew(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await reserve_idempotency_key(conn, WALLET, "idem_1", BODY_HASH)

        released = await release_idempotency_key(conn, WALLET, "idem_1")
        anew = await reserve_idempotency_key(conn, WALLET, "idem_1", OTHER_BODY_HASH)

    assert released is True
    assert anew.outcome is ReservationOutcome.NEW
    assert anew.record.request_hash == OTHER_BODY_HASH


async def test_release_idempotency_key_keeps_an_answered_key(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await reserve_idempotency_key(conn, WALLET, "idem_1", BODY_HASH)
        await complete_idempotency_key(conn, WALLET, "idem_1", status=409, body=None)

        released = await release_idempotency_key(conn, WALLET, "idem_1")
        never_held = await release_idempotency_key(conn, WALLET, "idem_unknown")
        kept = await get_idempotency_key(conn, WALLET, "idem_1")

    assert (released, never_held) == (False, False)
    assert kept is not None
    assert kept.state is IdempotencyState.DONE


async def test_complete_idempotency_key_not_reserved_raises_not_found(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        with pytest.raises(NotFound):
            await complete_idempotency_key(conn, WALLET, "idem_1", status=201, body={})


async def test_complete_idempotency_key_twice_raises_invalid_transition(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await reserve_idempotency_key(conn, WALLET, "idem_1", BODY_HASH)
        first = await complete_idempotency_key(
            conn, WALLET, "idem_1", status=201, body=RESPONSE
        )

        with pytest.raises(InvalidTransition):
            await complete_idempotency_key(conn, WALLET, "idem_1", status=500, body={})
        kept = await get_idempotency_key(conn, WALLET, "idem_1")

    assert kept == first


async def test_complete_idempotency_key_naming_an_unknown_run_raises_not_found(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await reserve_idempotency_key(conn, WALLET, "idem_1", BODY_HASH)

        with pytest.raises(NotFound):
            await complete_idempotency_key(
                conn, WALLET, "idem_1", status=201, body={}, run_id="run_unknown"
            )
        still_held = await get_idempotency_key(conn, WALLET, "idem_1")

    assert still_held is not None
    assert still_held.state is IdempotencyState.IN_FLIGHT


async def test_concurrent_reservations_of_one_key_give_exactly_one_new(
    db_pool: asyncpg.Pool,
) -> None:
    attempts = [reserve_in_transaction(db_pool, "idem_race") for _ in range(4)]

    reservations = await asyncio.gather(*attempts)

    outcomes = sorted(reservation.outcome for reservation in reservations)
    assert outcomes == ["in_flight", "in_flight", "in_flight", "new"]


async def test_reservation_waiting_on_a_rolled_back_reservation_is_new(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as first_conn:
        first_tx = first_conn.transaction()
        await first_tx.start()
        await reserve_idempotency_key(first_conn, WALLET, "idem_race", BODY_HASH)
        waiting = asyncio.create_task(reserve_in_transaction(db_pool, "idem_race"))
        await asyncio.sleep(0.1)
        still_blocked = not waiting.done()

        await first_tx.rollback()
        reservation = await waiting

    assert still_blocked
    assert reservation.outcome is ReservationOutcome.NEW
