"""Agent runs: created on request, joined to their payment, moved through states."""

import logging
from typing import Any

import asyncpg

from store.errors import (
    DuplicateRun,
    InvalidTransition,
    NotFound,
    PaymentAlreadyAttached,
    RunAlreadyPaid,
)
from store.records import NewRun, RunPage, RunRecord, RunStatus
from store.writes import write_row

logger = logging.getLogger(__name__)

# An operator retry takes a failed run back to the queue; nothing else goes back.
ALLOWED_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.PENDING_PAYMENT: frozenset(
        {RunStatus.QUEUED, RunStatus.FAILED, RunStatus.CANCELLED}
    ),
    RunStatus.QUEUED: frozenset(
        {RunStatus.RUNNING, RunStatus.CANCELLED, RunStatus.FAILED}
    ),
    RunStatus.RUNNING: frozenset(
        {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED}
    ),
    RunStatus.FAILED: frozenset({RunStatus.QUEUED}),
    RunStatus.COMPLETED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}
_FINISHED = [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED]

_CREATE = """
with created as (
    insert into agent_runs (
        run_id, agent_id, operator_wallet, action, params, billable, status,
        idempotency_key, request_hash
    ) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    returning *
), logged as (
    insert into x402_payment_events (signal, run_id)
    select 'run_' || status, run_id from created
)
select * from created
"""
# A retry (back to queued) clears the previous attempt's error and end time.
_TRANSITION = """
with moved as (
    update agent_runs set
        status = $2::text,
        updated_at = now(),
        started_at = case when $2::text = 'running' then now() else started_at end,
        finished_at = case
            when $2::text = any($4::text[]) then now()
            when $2::text = 'queued' then null
            else finished_at end,
        result = coalesce($5, result),
        error = case when $2::text = 'queued' then null else coalesce($6, error) end,
        execution_tx_hashes = coalesce($7, execution_tx_hashes)
    where run_id = $1 and status = any($3::text[])
    returning *
), logged as (
    insert into x402_payment_events (signal, run_id, payment_ref, reason)
    select 'run_' || status, run_id, payment_ref, error from moved
)
select * from moved
"""
_ATTACH = """
update agent_runs set payment_ref = $2, payment_evidence = $3, updated_at = now()
where run_id = $1 and (payment_ref is null or payment_ref = $2)
returning *
"""
# Keyset pagination on (created_at, run_id): the cursor is the last run_id seen,
# looked up within the same operator's runs so it cannot probe other wallets.
_LIST = """
select * from agent_runs
where operator_wallet = $1
    and ($2::text is null or status = $2)
    and ($3::text is null or agent_id = $3)
    and ($4::text is null or (created_at, run_id) < (
        select created_at, run_id from agent_runs
        where run_id = $4 and operator_wallet = $1
    ))
order by created_at desc, run_id desc
limit $5
"""


async def create_run(conn: asyncpg.Connection, run: NewRun) -> RunRecord:
    """Insert a run: ``pending_payment`` when billable, else ``queued``."""
    row = await write_row(
        conn,
        _CREATE,
        run.run_id,
        run.agent_id,
        run.operator_wallet,
        run.action,
        run.params,
        run.billable,
        run.initial_status,
        run.idempotency_key,
        run.request_hash,
        violations={
            "agent_runs_pkey": lambda: DuplicateRun(f"run {run.run_id} exists"),
            "agent_runs_idempotency_key_key": lambda: DuplicateRun(
                f"a run with idempotency key {run.idempotency_key} exists"
            ),
            "agent_runs_agent_id_fkey": lambda: NotFound(f"no agent {run.agent_id}"),
        },
    )
    assert row is not None  # an insert without ON CONFLICT returns its row
    logger.debug("run created run_id=%s status=%s", run.run_id, run.initial_status)
    return RunRecord.from_row(row)


async def get_run(conn: asyncpg.Connection, run_id: str) -> RunRecord | None:
    """The run with this id, if any."""
    row = await conn.fetchrow("select * from agent_runs where run_id = $1", run_id)
    return None if row is None else RunRecord.from_row(row)


async def get_run_by_payment_ref(
    conn: asyncpg.Connection, payment_ref: str
) -> RunRecord | None:
    """The run a payment pays for, if it has been attached."""
    row = await conn.fetchrow(
        "select * from agent_runs where payment_ref = $1", payment_ref
    )
    return None if row is None else RunRecord.from_row(row)


async def transition_run(
    conn: asyncpg.Connection,
    run_id: str,
    to_status: RunStatus,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    execution_tx_hashes: list[str] | None = None,
) -> RunRecord:
    """Move a run along ALLOWED_TRANSITIONS; fields left None keep their value.

    A run already in ``to_status`` is returned unchanged, so an activity retry
    is harmless. Any other move outside the table raises InvalidTransition.
    """
    sources = [s for s, targets in ALLOWED_TRANSITIONS.items() if to_status in targets]
    row = await conn.fetchrow(
        _TRANSITION,
        run_id,
        to_status,
        sources,
        _FINISHED,
        result,
        error,
        execution_tx_hashes,
    )
    if row is not None:
        logger.debug("run moved run_id=%s status=%s", run_id, to_status)
        return RunRecord.from_row(row)

    current = await _require(conn, run_id)
    if current.status is to_status:
        return current
    raise InvalidTransition(
        f"run {run_id} is {current.status}; cannot become {to_status}",
        payment_ref=current.payment_ref,
    )


async def attach_payment(
    conn: asyncpg.Connection,
    run_id: str,
    payment_ref: str,
    evidence: dict[str, Any] | None,
) -> RunRecord:
    """Join a run to the payment that pays for it; the payment must be claimed.

    Attaching the same payment again refreshes the evidence. Raises
    RunAlreadyPaid or PaymentAlreadyAttached when either side is taken.
    """
    row = await write_row(
        conn,
        _ATTACH,
        run_id,
        payment_ref,
        evidence,
        violations={
            "agent_runs_payment_ref_fkey": lambda: NotFound(
                f"no payment {payment_ref}", payment_ref=payment_ref
            ),
            "agent_runs_payment_ref_key": lambda: PaymentAlreadyAttached(
                f"payment {payment_ref} already pays another run",
                payment_ref=payment_ref,
            ),
        },
    )
    if row is not None:
        return RunRecord.from_row(row)

    current = await _require(conn, run_id)
    raise RunAlreadyPaid(
        f"run {run_id} is paid by {current.payment_ref}", payment_ref=payment_ref
    )


async def list_runs(
    conn: asyncpg.Connection,
    *,
    operator_wallet: str,
    status: RunStatus | None = None,
    agent_id: str | None = None,
    limit: int = 50,
    before: str | None = None,
) -> RunPage:
    """An operator's runs, newest first, after the run id ``before`` if given."""
    rows = await conn.fetch(_LIST, operator_wallet, status, agent_id, before, limit + 1)
    runs = [RunRecord.from_row(row) for row in rows[:limit]]

    # One row more than asked for says whether another page exists.
    next_before = runs[-1].run_id if len(rows) > limit else None
    return RunPage(runs=runs, next_before=next_before)


async def _require(conn: asyncpg.Connection, run_id: str) -> RunRecord:
    """The run, or NotFound."""
    run = await get_run(conn, run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    return run
