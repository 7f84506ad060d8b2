"""Run workflow: a run that is not billable, executed without a payment."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows import search_attributes as attrs
    from workflows.execution import RunExecution
    from workflows.models import RunInput, RunOutcome


@workflow.defn(name="RunWorkflow")
class RunWorkflow:
    """One free run, id ``run_<runId>``; the run id keys its execution."""

    @workflow.init
    def __init__(self, start: RunInput) -> None:
        self._execution = RunExecution(start.run, start.policy)

    @workflow.run
    async def run(self, start: RunInput) -> RunOutcome:
        workflow.upsert_search_attributes(
            [
                attrs.X402_RUN_ID.value_set(start.run.run_id),
                attrs.X402_AGENT_ID.value_set(start.run.agent_id),
                attrs.X402_STATE.value_set("run_execution"),
            ]
        )

        # 5. run execution, the only stage of a run that costs nothing.
        outcome = await self._execution.run()

        workflow.upsert_search_attributes(
            [attrs.X402_STATE.value_set(outcome.run_state)]
        )
        return outcome

    @workflow.signal
    def retry(self) -> None:
        """Run a failed execution again."""
        self._execution.retry_requested = True

    @workflow.signal
    def cancel(self, reason: str) -> None:
        """Cancel the run if it has not started, or end its wait after a failure."""
        self._execution.cancel_reason = reason or "cancelled by operator"

    @workflow.query
    def status(self) -> RunOutcome:
        """The run's state and what its execution produced so far."""
        return self._execution.outcome()
