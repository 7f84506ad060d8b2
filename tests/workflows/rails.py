"""A payment worker on a real Temporal server, with real activities behind it."""

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.execution import ExecutionActivities
from activities.ledger import LedgerActivities
from activities.settlement import SettlementActivities
from activities.signing import SigningActivities
from protocol.models import Challenge, PaymentPayload, SettleResponse
from store.pool import connection
from store.records import NewRun
from store.runs import create_run
from tests.factories import SECRET, make_challenge, make_payment
from tests.store.builders import WALLET, insert_agent
from worker import build_activities
from workflows.models import (
    PayAndRunRequest,
    PaymentInput,
    PaymentPolicy,
    RunOrder,
    SettleRequest,
)
from workflows.payment import PaymentWorkflow
from workflows.run import RunWorkflow

# Short intervals keep real-time tests quick; timer tests skip time anyway.
FAST_POLICY = PaymentPolicy(first_interval_seconds=2, max_interval_seconds=60)


def pydantic_client(env: WorkflowEnvironment) -> Client:
    """The environment's client, speaking through the pydantic data converter."""
    config = env.client.config()
    config["data_converter"] = pydantic_data_converter
    return Client(**config)


def activities_for(
    pool: asyncpg.Pool,
    rpc_urls: Sequence[str],
    executor_url: str | None,
    executor_key: str | None,
) -> list[Any]:
    """Every activity of the worker, bound to the test's parts."""
    return build_activities(
        SigningActivities((SECRET,)),
        LedgerActivities(pool),
        SettlementActivities(rpc_urls),
        ExecutionActivities(executor_url, executor_key),
    )


@dataclass
class Rails:
    """What a workflow test talks to: the client, its queue and the database."""

    env: WorkflowEnvironment
    client: Client
    task_queue: str
    pool: asyncpg.Pool
    policy: PaymentPolicy = field(default_factory=lambda: FAST_POLICY)
    started: list[str] = field(default_factory=list)

    async def result(self, handle: WorkflowHandle) -> Any:
        """The workflow's result; the time-skipping server skips its timers."""
        if not self.env.supports_time_skipping:
            return await handle.result()

        # The test server skips time even while a worker holds a workflow task:
        # a slow first task (sandbox imports) would time out. A query answered
        # means the worker has the workflow loaded.
        await handle.query("status")
        async with self.env.time_skipping_unlocked():
            return await handle.result()

    def presentation(
        self, replay_key: str | None = None, **payment: Any
    ) -> tuple[Challenge, PaymentPayload]:
        """A fresh challenge and a payment answering it under ``replay_key``."""
        challenge = make_challenge(
            now=datetime.now(UTC), challenge_id=f"ch_{uuid.uuid4().hex[:12]}"
        )
        key = replay_key or f"rk_{uuid.uuid4().hex[:12]}"
        return challenge, make_payment(challenge, replay_key=key, **payment)

    async def create_run(self, *, billable: bool = True) -> RunOrder:
        """A run row of a fresh agent, as the API creates it before payment."""
        agent_id = f"agent_{uuid.uuid4().hex[:8]}"
        async with connection(self.pool) as conn:
            await insert_agent(conn, agent_id)
            run = await create_run(
                conn,
                NewRun(
                    agent_id=agent_id,
                    operator_wallet=WALLET,
                    action="stake",
                    params={"amount": "100"},
                    billable=billable,
                ),
            )
        return RunOrder(
            run_id=run.run_id,
            agent_id=agent_id,
            action=run.action,
            params=run.params,
            operator_wallet=WALLET,
        )

    async def settle(
        self,
        challenge: Challenge,
        payment: PaymentPayload,
        *,
        run: RunOrder | None = None,
        policy: PaymentPolicy | None = None,
    ) -> tuple[SettleResponse, WorkflowHandle]:
        """Update-with-Start as the API does it: the settle answer and the handle."""
        start = PaymentInput(
            challenge=challenge, payment=payment, run=run, policy=policy or self.policy
        )
        operation = WithStartWorkflowOperation(
            PaymentWorkflow.run,
            start,
            id=payment.payment_ref,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            task_queue=self.task_queue,
        )
        if run is None:
            answer = await self.client.execute_update_with_start_workflow(
                PaymentWorkflow.settle,
                SettleRequest(challenge=challenge, payment=payment),
                start_workflow_operation=operation,
            )
        else:
            answer = await self.client.execute_update_with_start_workflow(
                PaymentWorkflow.pay_and_run,
                PayAndRunRequest(
                    challenge=challenge, payment=payment, run_id=run.run_id
                ),
                start_workflow_operation=operation,
            )
        handle = await operation.workflow_handle()
        self.started.append(handle.id)
        return answer, handle

    async def close(self) -> None:
        """Terminate what this test left running.

        The time-skipping server shares one clock: a workflow left waiting
        on a queue nobody polls would stop time from skipping for later tests.
        """
        for workflow_id in self.started:
            handle = self.client.get_workflow_handle(workflow_id)
            description = await handle.describe()
            if description.status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test finished")

    async def fetchval(self, query: str, *args: object) -> Any:
        async with connection(self.pool) as conn:
            return await conn.fetchval(query, *args)

    async def fetchrow(self, query: str, *args: object) -> Any:
        async with connection(self.pool) as conn:
            return await conn.fetchrow(query, *args)


@asynccontextmanager
async def running_rails(
    env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    *,
    rpc_urls: Sequence[str],
    executor_url: str | None = None,
    executor_key: str | None = None,
    policy: PaymentPolicy = FAST_POLICY,
) -> AsyncIterator[Rails]:
    """A worker on a fresh task queue for the duration of the block."""
    client = pydantic_client(env)
    task_queue = f"tq-{uuid.uuid4().hex[:12]}"
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[PaymentWorkflow, RunWorkflow],
        activities=activities_for(pool, rpc_urls, executor_url, executor_key),
    )
    rails = Rails(
        env=env, client=client, task_queue=task_queue, pool=pool, policy=policy
    )
    try:
        async with worker:
            yield rails
    finally:
        await rails.close()
