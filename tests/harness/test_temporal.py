"""The Temporal fixtures start real servers that run workflows."""

import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from workflows import search_attributes


@workflow.defn(sandboxed=False)
class SleepyWorkflow:
    """Waits on a durable timer, then reports how long the workflow clock moved."""

    @workflow.run
    async def run(self, hours: int) -> float:
        started = workflow.time()
        await workflow.sleep(timedelta(hours=hours))
        return workflow.time() - started


async def test_dev_server_registers_the_payment_search_attributes(
    temporal_dev_env: WorkflowEnvironment,
) -> None:
    client = temporal_dev_env.client

    listing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )

    expected = {key.name for key in search_attributes.ALL}
    assert expected <= set(listing.custom_attributes)


async def test_dev_server_runs_a_workflow_to_completion(
    temporal_dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = temporal_dev_env.client

    async with Worker(client, task_queue=task_queue, workflows=[SleepyWorkflow]):
        handle = await client.start_workflow(
            SleepyWorkflow.run, 0, id=f"wf-{uuid.uuid4()}", task_queue=task_queue
        )
        await handle.result()

    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_time_skipping_server_skips_hours_of_timers(
    temporal_time_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = temporal_time_env.client

    async with Worker(client, task_queue=task_queue, workflows=[SleepyWorkflow]):
        elapsed = await client.execute_workflow(
            SleepyWorkflow.run, 5, id=f"wf-{uuid.uuid4()}", task_queue=task_queue
        )

    assert elapsed >= 5 * 3600
