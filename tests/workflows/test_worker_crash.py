"""A payment outlives a SIGKILLed worker: a fresh worker settles and runs it once."""

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from tests.factories import SECRET, TX_HASH
from tests.harness.executor import API_KEY, StarkzapExecutor
from tests.harness.starknet_node import StarknetNode, accepted_on_l2, pre_confirmed
from tests.harness.worker_process import (
    WorkerProcesses,
    kill_hard,
    worker_environment,
)
from tests.waiting import eventually
from tests.workflows.rails import Rails, pydantic_client
from workflows.models import PaymentOutcome, PaymentPolicy, PaymentProgress
from workflows.payment import PaymentWorkflow

# Re-checks a second or two apart, so the wait spans the crash and the restart.
CRASH_POLICY = PaymentPolicy(first_interval_seconds=1, max_interval_seconds=2)
# Receipt answers before the transaction is final: the first check, the re-check
# seen before the kill, and at least one that only the second worker can make.
PENDING_CHECKS = 5
# About 20 s are expected: the next workflow task waits on the killed worker's
# sticky queue until its schedule-to-start timeout (10 s by default) moves it to
# the shared queue, then four re-checks and the run follow.
RESULT_TIMEOUT_SECONDS = 40.0


@pytest.fixture
async def workers(
    temporal_dev_env: WorkflowEnvironment,
    database_url: str,
    starknet_node: StarknetNode,
    starkzap_executor: StarkzapExecutor,
    tmp_path: Path,
) -> AsyncIterator[WorkerProcesses]:
    """Worker subprocesses on one fresh task queue; all killed after the test."""
    env = worker_environment(
        temporal_address=temporal_dev_env.client.service_client.config.target_host,
        database_url=database_url,
        rpc_url=starknet_node.url,
        facilitator_secret=SECRET,
    ) | {
        "STARKZAP_EXECUTOR_URL": starkzap_executor.url,
        "STARKZAP_EXECUTOR_API_KEY": API_KEY,
    }
    processes = WorkerProcesses(env, tmp_path)
    try:
        yield processes
    finally:
        await processes.close()


@pytest.fixture
async def crash_rails(
    temporal_dev_env: WorkflowEnvironment,
    db_pool: asyncpg.Pool,
    workers: WorkerProcesses,
) -> AsyncIterator[Rails]:
    """The starter's side, on the workers' task queue; terminates what is left."""
    rails = Rails(
        env=temporal_dev_env,
        client=pydantic_client(temporal_dev_env),
        task_queue=workers.env["TEMPORAL_TASK_QUEUE"],
        pool=db_pool,
        policy=CRASH_POLICY,
    )
    try:
        yield rails
    finally:
        await rails.close()


async def checked_at_least(handle: WorkflowHandle, count: int) -> bool:
    """Whether the workflow has made ``count`` receipt checks so far."""
    progress: PaymentProgress = await handle.query(PaymentWorkflow.status)
    return progress.check_count >= count


async def result_within(
    handle: WorkflowHandle, workers: WorkerProcesses
) -> PaymentOutcome:
    """The workflow's result, or a failure carrying every worker's log."""
    try:
        async with asyncio.timeout(RESULT_TIMEOUT_SECONDS):
            return await handle.result()
    except TimeoutError:
        pytest.fail(f"no result in {RESULT_TIMEOUT_SECONDS:g} s\n{workers.output()}")


async def test_worker_killed_during_finality_wait_settles_and_runs_once(
    crash_rails: Rails,
    workers: WorkerProcesses,
    starknet_node: StarknetNode,
    starkzap_executor: StarkzapExecutor,
) -> None:
    starknet_node.script(TX_HASH, *[pre_confirmed()] * PENDING_CHECKS, accepted_on_l2())
    first = await workers.start()
    run = await crash_rails.create_run()
    challenge, payment = crash_rails.presentation()
    answer, handle = await crash_rails.settle(challenge, payment, run=run)

    await eventually(lambda: checked_at_least(handle, 2), seconds=15)
    checks_before_kill = starknet_node.count("getTransactionReceipt", TX_HASH)
    exit_status = await kill_hard(first)
    await workers.start()
    outcome = await result_within(handle, workers)
    progress = await handle.query(PaymentWorkflow.status)

    assert answer.status == "pending"
    assert exit_status == -signal.SIGKILL
    assert outcome.decision.status == "settled"
    assert outcome.run is not None and outcome.run.run_state == "completed"
    assert progress.check_count == PENDING_CHECKS + 1
    assert starknet_node.count("getTransactionReceipt", TX_HASH) > checks_before_kill
    assert starkzap_executor.executions_for(run.run_id) == 1
    row = await crash_rails.fetchrow(
        "select status, finality from x402_payments where replay_key = $1",
        payment.replay_key,
    )
    assert (row["status"], row["finality"]) == ("settled", "ACCEPTED_ON_L2")
    run_status = await crash_rails.fetchval(
        "select status from agent_runs where run_id = $1", run.run_id
    )
    assert run_status == "completed"
    settled_events = await crash_rails.fetchval(
        "select count(*) from x402_payment_events"
        " where payment_ref = $1 and signal = 'payment_settled'",
        payment.payment_ref,
    )
    assert settled_events == 1
    run_transitions = await crash_rails.fetchval(
        "select array_agg(signal order by event_id) from x402_payment_events"
        " where run_id = $1 and kind = 'transition'",
        run.run_id,
    )
    assert run_transitions == [
        "run_pending_payment",
        "run_queued",
        "run_running",
        "run_completed",
    ]


async def test_worker_killed_during_the_executor_call_runs_once(
    crash_rails: Rails,
    workers: WorkerProcesses,
    starknet_node: StarknetNode,
    starkzap_executor: StarkzapExecutor,
) -> None:
    starknet_node.script(TX_HASH, accepted_on_l2())
    starkzap_executor.slow(3)
    first = await workers.start()
    run = await crash_rails.create_run()
    challenge, payment = crash_rails.presentation()
    answer, handle = await crash_rails.settle(challenge, payment, run=run)

    async def executor_called() -> bool:
        return len(starkzap_executor.calls_for(run.run_id)) >= 1

    await eventually(executor_called, seconds=15)
    await kill_hard(first)
    await workers.start()
    outcome = await result_within(handle, workers)

    assert answer.status == "settled"
    assert outcome.run is not None and outcome.run.run_state == "completed"
    assert starkzap_executor.executions_for(run.run_id) == 1
    outcomes = [call.outcome for call in starkzap_executor.calls_for(run.run_id)]
    assert outcomes == ["executed", "replayed"]
    run_status = await crash_rails.fetchval(
        "select status from agent_runs where run_id = $1", run.run_id
    )
    assert run_status == "completed"
