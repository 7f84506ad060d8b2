"""Reconcile: retry pending payments now, restart those whose workflow is gone.

Durable timers make this unnecessary in normal operation; it exists for
incidents (an RPC outage just ended, a namespace restored without history).
"""

import logging
from datetime import timedelta

from temporalio.client import WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from api.paywall import parse_presentation
from api.schemas import ReconcileSummary
from api.services import Services
from api.workflows import order_of, payment_memo, signal_payment
from store import payments, runs
from store.pool import connection
from store.records import PaymentRecord, PaymentStatus
from workflows.models import PaymentInput, PaymentPolicy
from workflows.payment import PaymentWorkflow

logger = logging.getLogger(__name__)

# Younger pending rows are still inside their first settle request.
MIN_AGE = timedelta(seconds=30)
WAITING_QUERY = 'X402State = "finality_wait" AND ExecutionStatus = "Running"'


async def reconcile_pending(services: Services, limit: int) -> ReconcileSummary:
    """Retry up to ``limit`` waiting workflows, then restart orphaned rows."""
    retried: set[str] = set()
    async for execution in services.temporal.list_workflows(WAITING_QUERY, limit=limit):
        if await signal_payment(services, execution.id, "retry"):
            retried.add(execution.id)

    async with connection(services.pool) as conn:
        rows = await payments.list_payments(
            conn, status=PaymentStatus.PENDING, older_than=MIN_AGE, limit=limit
        )
    started = failed = 0
    for row in rows:
        if row.payment_ref in retried:
            continue
        outcome = await _revive(services, row)
        if outcome == "retried":
            retried.add(row.payment_ref)
        elif outcome == "started":
            started += 1
        else:
            failed += 1

    summary = ReconcileSummary(
        scanned=len(rows), retried=len(retried), started=started, failed=failed
    )
    logger.info(
        "reconcile done scanned=%s retried=%s started=%s failed=%s",
        summary.scanned,
        summary.retried,
        summary.started,
        summary.failed,
    )
    return summary


async def _revive(services: Services, row: PaymentRecord) -> str:
    """retried (its workflow runs), started (it had none), or failed."""
    handle = services.temporal.get_workflow_handle(row.payment_ref)
    try:
        described = await handle.describe()
        if described.status == WorkflowExecutionStatus.RUNNING:
            await handle.signal(PaymentWorkflow.retry)
            return "retried"
    except RPCError as error:
        if error.status is not RPCStatusCode.NOT_FOUND:
            raise

    presentation = (row.evidence or {}).get("presentation")
    if presentation is None:
        logger.error("pending payment cannot restart payment_ref=%s", row.payment_ref)
        return "failed"
    async with connection(services.pool) as conn:
        run = await runs.get_run_by_payment_ref(conn, row.payment_ref)

    shown = parse_presentation(presentation)
    order = None if run is None else order_of(run)
    await services.temporal.start_workflow(
        PaymentWorkflow.run,
        PaymentInput(
            challenge=shown.challenge,
            payment=shown.payment,
            run=order,
            policy=PaymentPolicy.from_settings(services.settings),
        ),
        id=row.payment_ref,
        task_queue=services.settings.temporal_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        memo=payment_memo(shown, order),
    )
    logger.info("payment workflow restarted payment_ref=%s", row.payment_ref)
    return "started"
