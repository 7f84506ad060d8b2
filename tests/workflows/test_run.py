"""The run workflow: a free run executes once, without a payment."""

from tests.harness.executor import StarkzapExecutor
from tests.workflows.rails import Rails
from workflows.models import RunInput
from workflows.run import RunWorkflow


async def test_free_run_executes_once_without_payment(
    dev_rails: Rails, starkzap_executor: StarkzapExecutor
) -> None:
    run = await dev_rails.create_run(billable=False)

    outcome = await dev_rails.client.execute_workflow(
        RunWorkflow.run,
        RunInput(run=run),
        id=f"run_{run.run_id}",
        task_queue=dev_rails.task_queue,
    )

    assert outcome.run_state == "completed"
    assert starkzap_executor.executions_for(run.run_id) == 1
    status = await dev_rails.fetchval(
        "select status from agent_runs where run_id = $1", run.run_id
    )
    assert status == "completed"
