"""Claims about store.events: an append-only log whose signals are counted."""

import asyncpg
import pytest

from protocol.signals import Signal
from store.events import append_event, count_signals, list_events
from store.records import EventKind, OperatorSignal
from tests.store.builders import insert_payment


async def test_append_event_records_a_protocol_signal(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        event = await append_event(
            conn,
            signal=Signal.VERIFY_REJECTED,
            payment_ref="pay_rk_1",
            reason="INVALID_PAYLOAD",
            detail={"field": "amount"},
        )

        stored = await list_events(conn, payment_ref="pay_rk_1")

    assert event.kind is EventKind.SIGNAL
    assert (event.signal, event.reason) == ("verify_rejected", "INVALID_PAYLOAD")
    assert event.detail == {"field": "amount"}
    assert stored == [event]


async def test_append_event_records_an_operator_signal_as_operator(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        event = await append_event(conn, signal=OperatorSignal.RETRY, run_id="run_1")

    assert event.kind is EventKind.OPERATOR
    assert event.run_id == "run_1"


@pytest.mark.parametrize("signal", ["verify_acepted", "run_queued"])
async def test_append_event_refuses_unknown_and_transition_signals(
    db_pool: asyncpg.Pool, signal: str
) -> None:
    async with db_pool.acquire() as conn:
        with pytest.raises(ValueError, match="unknown event signal"):
            await append_event(conn, signal=signal)
        events = await list_events(conn)

    assert events == []


async def test_count_signals_counts_each_protocol_signal_only(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        for signal in [Signal.CHALLENGE_ISSUED, Signal.CHALLENGE_ISSUED]:
            await append_event(conn, signal=signal)
        await append_event(conn, signal=Signal.PAYWALL_PAID)
        await append_event(conn, signal=OperatorSignal.CANCEL)
        await insert_payment(conn, "rk_1")

        counts = await count_signals(conn)

    assert set(counts) == {signal.value for signal in Signal}
    assert counts["challenge_issued"] == 2
    assert counts["paywall_paid"] == 1
    assert sum(counts.values()) == 3


async def test_count_signals_since_leaves_out_earlier_events(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await append_event(conn, signal=Signal.SETTLE_PENDING)
        later = await append_event(conn, signal=Signal.SETTLE_SETTLED)

        counts = await count_signals(conn, since=later.created_at)

    assert counts["settle_settled"] == 1
    assert counts["settle_pending"] == 0


async def test_list_events_returns_one_trail_oldest_first(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        for signal in [Signal.VERIFY_ACCEPTED, Signal.SETTLE_PENDING]:
            await append_event(conn, signal=signal, payment_ref="pay_rk_1")
        await append_event(conn, signal=Signal.VERIFY_ACCEPTED, payment_ref="pay_rk_2")
        await append_event(conn, signal=OperatorSignal.RETRY, run_id="run_1")

        trail = await list_events(conn, payment_ref="pay_rk_1")
        first = await list_events(conn, payment_ref="pay_rk_1", limit=1)
        run_trail = await list_events(conn, run_id="run_1")

    assert [event.signal for event in trail] == ["verify_accepted", "settle_pending"]
    assert first == trail[:1]
    assert [event.signal for event in run_trail] == ["operator_retry"]


@pytest.mark.parametrize(
    "statement",
    [
        "update x402_payment_events set reason = 'edited'",
        "delete from x402_payment_events",
        "truncate x402_payment_events",
    ],
    ids=["update", "delete", "truncate"],
)
async def test_event_table_refuses_changes_to_the_log(
    db_pool: asyncpg.Pool, statement: str
) -> None:
    async with db_pool.acquire() as conn:
        event = await append_event(conn, signal=Signal.SETTLE_SETTLED)

        with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
            await conn.execute(statement)
        events = await list_events(conn)

    assert events == [event]
