"""Claims about store.runs: one run per request, one payment per run, legal moves."""

import asyncpg
import pytest

from store.errors import (
    DuplicateRun,
    InvalidTransition,
    NotFound,
    PaymentAlreadyAttached,
    RunAlreadyPaid,
)
from store.events import list_events
from store.records import RunRecord, RunStatus
from store.runs import (
    attach_payment,
    create_run,
    get_run,
    get_run_by_payment_ref,
    list_runs,
    transition_run,
)
from tests.factories import TX_HASH
from tests.store.builders import (
    AGENT_ID,
    OTHER_WALLET,
    WALLET,
    insert_agent,
    insert_payment,
    insert_run,
    make_run,
)

# The moves that bring a new billable run to each status.
PATH_TO: dict[RunStatus, list[RunStatus]] = {
    RunStatus.PENDING_PAYMENT: [],
    RunStatus.QUEUED: [RunStatus.QUEUED],
    RunStatus.RUNNING: [RunStatus.QUEUED, RunStatus.RUNNING],
    RunStatus.COMPLETED: [RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.COMPLETED],
    RunStatus.FAILED: [RunStatus.FAILED],
    RunStatus.CANCELLED: [RunStatus.CANCELLED],
}


async def insert_run_in(conn: asyncpg.Connection, status: RunStatus) -> RunRecord:
    run = await insert_run(conn)
    for step in PATH_TO[status]:
        run = await transition_run(conn, run.run_id, step)
    return run


async def age_run(conn: asyncpg.Connection, run_id: str, minutes: int) -> None:
    await conn.execute(
        "update agent_runs set created_at = now() - $2::int * interval '1m'"
        " where run_id = $1",
        run_id,
        minutes,
    )


async def test_create_run_billable_starts_pending_payment(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)

        run = await create_run(conn, make_run(billable=True))

    assert run.status is RunStatus.PENDING_PAYMENT
    assert (run.agent_id, run.operator_wallet) == (AGENT_ID, WALLET)
    assert run.params == {"amount": "100"}
    assert run.payment_ref is None
    assert run.execution_tx_hashes == []


async def test_create_run_free_starts_queued(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)

        run = await create_run(conn, make_run(billable=False))

    assert run.status is RunStatus.QUEUED


async def test_create_run_with_a_taken_run_id_raises_duplicate_run(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        await insert_run(conn, run_id="run_taken")

        with pytest.raises(DuplicateRun):
            await create_run(conn, make_run(run_id="run_taken"))


async def test_create_run_with_a_taken_idempotency_key_raises_duplicate_run(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        await insert_run(conn, idempotency_key="idem_1")

        with pytest.raises(DuplicateRun) as refused:
            await create_run(conn, make_run(idempotency_key="idem_1"))

    assert "idem_1" in str(refused.value)


async def test_create_run_same_idempotency_key_for_another_wallet_is_accepted(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        await insert_run(conn, idempotency_key="idem_1")

        other = await create_run(
            conn, make_run(operator_wallet=OTHER_WALLET, idempotency_key="idem_1")
        )

    assert other.operator_wallet == OTHER_WALLET


async def test_create_run_for_an_unknown_agent_raises_not_found(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        with pytest.raises(NotFound) as refused:
            await create_run(conn, make_run(agent_id="agent_unknown"))

    assert "agent_unknown" in str(refused.value)


async def test_get_run_returns_the_created_run_or_none(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        created = await insert_run(conn)

        found = await get_run(conn, created.run_id)
        unknown = await get_run(conn, "run_unknown")

    assert found == created
    assert unknown is None


async def test_get_run_by_payment_ref_finds_the_paid_run_or_none(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        run = await insert_run(conn)
        payment = await insert_payment(conn, "rk_1")
        paid = await attach_payment(conn, run.run_id, payment.payment_ref, None)

        found = await get_run_by_payment_ref(conn, "pay_rk_1")
        unknown = await get_run_by_payment_ref(conn, "pay_rk_unknown")

    assert found == paid
    assert unknown is None


async def test_transition_run_along_the_paid_path_records_each_stage(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        run = await insert_run(conn)

        queued = await transition_run(conn, run.run_id, RunStatus.QUEUED)
        running = await transition_run(conn, run.run_id, RunStatus.RUNNING)
        completed = await transition_run(
            conn,
            run.run_id,
            RunStatus.COMPLETED,
            result={"staked": "100"},
            execution_tx_hashes=[TX_HASH],
        )

    assert (queued.started_at, queued.finished_at) == (None, None)
    assert running.started_at is not None
    assert running.finished_at is None
    assert completed.status is RunStatus.COMPLETED
    assert completed.started_at == running.started_at
    assert completed.finished_at is not None
    assert completed.finished_at > running.started_at
    assert completed.result == {"staked": "100"}
    assert completed.execution_tx_hashes == [TX_HASH]


async def test_transition_run_logs_each_move_after_creation(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        run = await insert_run_in(conn, RunStatus.RUNNING)

        await transition_run(conn, run.run_id, RunStatus.FAILED, error="reverted")
        events = await list_events(conn, run_id=run.run_id)

    assert [(event.signal, event.reason) for event in events] == [
        ("run_pending_payment", None),
        ("run_queued", None),
        ("run_running", None),
        ("run_failed", "reverted"),
    ]


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (RunStatus.PENDING_PAYMENT, RunStatus.RUNNING),
        (RunStatus.COMPLETED, RunStatus.FAILED),
        (RunStatus.CANCELLED, RunStatus.QUEUED),
    ],
)
async def test_transition_run_outside_the_table_raises_invalid_transition(
    db_pool: asyncpg.Pool, current: RunStatus, target: RunStatus
) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        run = await insert_run_in(conn, current)

        with pytest.raises(InvalidTransition):
            await transition_run(conn, run.run_id, target)
        unchanged = await get_run(conn, run.run_id)

    assert unchanged == run


async def test_transition_run_to_its_current_status_returns_it_unchanged(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        running = await insert_run_in(conn, RunStatus.RUNNING)

        again = await transition_run(conn, running.run_id, RunStatus.RUNNING)

    assert again == running


async def test_transition_run_failed_back_to_queued_clears_the_error(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        run = await insert_run_in(conn, RunStatus.RUNNING)
        failed = await transition_run(
            conn, run.run_id, RunStatus.FAILED, error="executor timed out"
        )

        retried = await transition_run(conn, run.run_id, RunStatus.QUEUED)

    assert failed.error == "executor timed out"
    assert failed.finished_at is not None
    assert retried.status is RunStatus.QUEUED
    assert (retried.error, retried.finished_at) == (None, None)


async def test_transition_run_of_unknown_run_raises_not_found(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        with pytest.raises(NotFound):
            await transition_run(conn, "run_unknown", RunStatus.QUEUED)


async def test_attach_payment_joins_the_run_to_its_payment(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        run = await insert_run(conn)
        await insert_payment(conn, "rk_1")

        paid = await attach_payment(conn, run.run_id, "pay_rk_1", {"amount": "100"})

    assert paid.payment_ref == "pay_rk_1"
    assert paid.payment_evidence == {"amount": "100"}


async def test_attach_payment_again_with_the_same_payment_refreshes_the_evidence(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        run = await insert_run(conn)
        await insert_payment(conn, "rk_1")
        first = await attach_payment(conn, run.run_id, "pay_rk_1", {"amount": "100"})

        again = await attach_payment(conn, run.run_id, "pay_rk_1", {"finality": "L2"})

    assert again.payment_ref == first.payment_ref == "pay_rk_1"
    assert again.payment_evidence == {"finality": "L2"}
    assert again.model_dump(exclude={"payment_evidence", "updated_at"}) == (
        first.model_dump(exclude={"payment_evidence", "updated_at"})
    )


async def test_attach_payment_to_a_run_paid_by_another_raises_run_already_paid(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        run = await insert_run(conn)
        await insert_payment(conn, "rk_1")
        await insert_payment(conn, "rk_2")
        await attach_payment(conn, run.run_id, "pay_rk_1", None)

        with pytest.raises(RunAlreadyPaid):
            await attach_payment(conn, run.run_id, "pay_rk_2", None)
        unchanged = await get_run(conn, run.run_id)

    assert unchanged is not None
    assert unchanged.payment_ref == "pay_rk_1"


async def test_attach_payment_paying_another_run_raises_payment_already_attached(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        first = await insert_run(conn)
        second = await insert_run(conn)
        await insert_payment(conn, "rk_1")
        await attach_payment(conn, first.run_id, "pay_rk_1", None)

        with pytest.raises(PaymentAlreadyAttached) as refused:
            await attach_payment(conn, second.run_id, "pay_rk_1", None)

    assert refused.value.reason == "REPLAY_DETECTED"
    assert refused.value.payment_ref == "pay_rk_1"


async def test_attach_payment_not_claimed_raises_not_found(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        run = await insert_run(conn)

        with pytest.raises(NotFound):
            await attach_payment(conn, run.run_id, "pay_rk_unknown", None)


async def test_list_runs_returns_only_the_callers_runs_newest_first(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        for run_id, minutes in [("run_old", 30), ("run_new", 0), ("run_mid", 10)]:
            await insert_run(conn, run_id=run_id)
            await age_run(conn, run_id, minutes)
        await insert_run(conn, run_id="run_other", operator_wallet=OTHER_WALLET)

        page = await list_runs(conn, operator_wallet=WALLET)

    assert [run.run_id for run in page.runs] == ["run_new", "run_mid", "run_old"]
    assert page.next_before is None


async def test_list_runs_filters_by_status_and_agent(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        await insert_agent(conn, "agent_swapper")
        await insert_run(conn, run_id="run_paid_steward", billable=True)
        await insert_run(conn, run_id="run_free_steward", billable=False)
        await insert_run(
            conn, run_id="run_free_swapper", agent_id="agent_swapper", billable=False
        )

        queued = await list_runs(conn, operator_wallet=WALLET, status=RunStatus.QUEUED)
        queued_stewards = await list_runs(
            conn, operator_wallet=WALLET, status=RunStatus.QUEUED, agent_id=AGENT_ID
        )

    assert {run.run_id for run in queued.runs} == {
        "run_free_steward",
        "run_free_swapper",
    }
    assert [run.run_id for run in queued_stewards.runs] == ["run_free_steward"]


async def test_list_runs_pages_through_every_run_once(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        for minutes in range(5):
            await insert_run(conn, run_id=f"run_{minutes}")
            await age_run(conn, f"run_{minutes}", minutes)

        first = await list_runs(conn, operator_wallet=WALLET, limit=2)
        second = await list_runs(
            conn, operator_wallet=WALLET, limit=2, before=first.next_before
        )
        last = await list_runs(
            conn, operator_wallet=WALLET, limit=2, before=second.next_before
        )

    assert [run.run_id for run in first.runs] == ["run_0", "run_1"]
    assert [run.run_id for run in second.runs] == ["run_2", "run_3"]
    assert [run.run_id for run in last.runs] == ["run_4"]
    assert (first.next_before, second.next_before, last.next_before) == (
        "run_1",
        "run_3",
        None,
    )


async def test_list_runs_pages_runs_created_together_by_run_id(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        async with conn.transaction():
            for letter in "abc":
                await insert_run(conn, run_id=f"run_{letter}")

        first = await list_runs(conn, operator_wallet=WALLET, limit=2)
        rest = await list_runs(
            conn, operator_wallet=WALLET, limit=2, before=first.next_before
        )

    assert [run.run_id for run in first.runs] == ["run_c", "run_b"]
    assert [run.run_id for run in rest.runs] == ["run_a"]


async def test_list_runs_with_another_wallets_cursor_returns_nothing(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn)
        await insert_run(conn, run_id="run_mine")
        await insert_run(conn, run_id="run_theirs", operator_wallet=OTHER_WALLET)

        page = await list_runs(conn, operator_wallet=WALLET, before="run_theirs")

    assert page.runs == []
    assert page.next_before is None
