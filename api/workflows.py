"""How the API starts and reaches payment and run workflows on Temporal."""

import asyncio
import logging
from typing import Any

from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from api.paywall import Presentation
from api.services import Services
from protocol.models import SettleResponse
from store.records import RunRecord
from workflows.models import (
    PayAndRunRequest,
    PaymentInput,
    PaymentPolicy,
    PaymentProgress,
    RunInput,
    RunOrder,
    SettleRequest,
)
from workflows.payment import PaymentWorkflow
from workflows.run import RunWorkflow

logger = logging.getLogger(__name__)


def order_of(run: RunRecord) -> RunOrder:
    """The run as a workflow executes it."""
    return RunOrder(
        run_id=run.run_id,
        agent_id=run.agent_id,
        action=run.action,
        params=run.params,
        operator_wallet=run.operator_wallet,
    )


def payment_memo(presentation: Presentation, run: RunOrder | None) -> dict[str, str]:
    """What the Temporal UI shows beside the workflow: the terms, in plain words."""
    challenge, payment = presentation.challenge, presentation.payment
    memo = {
        "amount": f"{payment.amount} {payment.token}",
        "recipient": challenge.recipient,
        "network": challenge.network,
        "challengeId": challenge.challenge_id,
    }
    if run is not None:
        memo |= {"runId": run.run_id, "agent": run.agent_id, "action": run.action}
    return memo


def run_workflow_id(run_id: str) -> str:
    """``run_<runId>``: the workflow of a run that is not billable."""
    return f"run_{run_id}"


async def settle_payment(
    services: Services, presentation: Presentation, run: RunOrder | None = None
) -> tuple[SettleResponse, WorkflowHandle[Any, Any]]:
    """Update-with-Start on ``pay_<replayKey>``: the settle decision, and the handle.

    The conflict policy joins a running workflow, so a repeated request gets
    the same decision; a closed one answers from Postgres in a fresh run.
    """
    challenge, payment = presentation.challenge, presentation.payment
    start = PaymentInput(
        challenge=challenge,
        payment=payment,
        run=run,
        policy=PaymentPolicy.from_settings(services.settings),
    )
    operation = WithStartWorkflowOperation(
        PaymentWorkflow.run,
        start,
        id=payment.payment_ref,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        task_queue=services.settings.temporal_task_queue,
        memo=payment_memo(presentation, run),
    )
    if run is None:
        answer = await services.temporal.execute_update_with_start_workflow(
            PaymentWorkflow.settle,
            SettleRequest(challenge=challenge, payment=payment),
            start_workflow_operation=operation,
        )
    else:
        answer = await services.temporal.execute_update_with_start_workflow(
            PaymentWorkflow.pay_and_run,
            PayAndRunRequest(challenge=challenge, payment=payment, run_id=run.run_id),
            start_workflow_operation=operation,
        )
    logger.info(
        "settle answered payment_ref=%s status=%s reason=%s",
        payment.payment_ref,
        answer.status,
        answer.reason_code,
    )
    return answer, await operation.workflow_handle()


async def start_free_run(services: Services, order: RunOrder) -> WorkflowHandle:
    """Start the run workflow of a run without payment; a repeat joins it."""
    return await services.temporal.start_workflow(
        RunWorkflow.run,
        RunInput(run=order, policy=PaymentPolicy.from_settings(services.settings)),
        id=run_workflow_id(order.run_id),
        task_queue=services.settings.temporal_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        memo={"agent": order.agent_id, "action": order.action},
    )


async def wait_briefly(handle: WorkflowHandle, seconds: float) -> bool:
    """Whether the workflow closed within ``seconds``; it goes on either way."""
    try:
        await asyncio.wait_for(asyncio.shield(handle.result()), timeout=seconds)
    except TimeoutError:
        return False
    except Exception as error:  # a failed workflow is closed too
        logger.warning("workflow ended in error workflow_id=%s %s", handle.id, error)
    return True


async def payment_progress(
    services: Services, payment_ref: str
) -> PaymentProgress | None:
    """The ``status`` query of the payment's workflow; None if there is none."""
    handle = services.temporal.get_workflow_handle(payment_ref)
    try:
        return await handle.query(PaymentWorkflow.status)
    except WorkflowQueryFailedError:
        return None
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            return None
        raise


async def signal_payment(
    services: Services, payment_ref: str, signal: str, *args: str
) -> bool:
    """Send ``retry`` or ``cancel`` to a payment's workflow; False if none runs."""
    handle = services.temporal.get_workflow_handle(payment_ref)
    try:
        await handle.signal(signal, *args)
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True
