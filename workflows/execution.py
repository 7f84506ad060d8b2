"""Run execution inside a workflow: queued, running, completed or failed, retryable."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.models import (
        ExecutionRequest,
        ExecutionResult,
        PaymentPolicy,
        RunOrder,
        RunOutcome,
        RunTransition,
    )

# Must match: the error types raised by activities/execution.py as final.
FINAL_EXECUTOR_ERRORS = [
    "EXECUTOR_NOT_CONFIGURED",
    "EXECUTOR_REJECTED",
    "EXECUTOR_BAD_RESPONSE",
]
# Store errors that describe the data: retrying the same write cannot succeed.
FINAL_STORE_ERRORS = ["InvalidTransition", "NotFound", "ValidationError", "ValueError"]

EXECUTOR_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
    non_retryable_error_types=FINAL_EXECUTOR_ERRORS,
)
# A lost database is waited out: the run's state must reach Postgres eventually.
LEDGER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=FINAL_STORE_ERRORS,
)
LEDGER_TIMEOUT = timedelta(seconds=30)
EXECUTOR_TIMEOUT = timedelta(seconds=60)
EXECUTOR_HEARTBEAT_TIMEOUT = timedelta(seconds=10)

# How long a failed run waits for an operator's retry before the workflow ends.
RETRY_WINDOW = timedelta(days=1)


class RunExecution:
    """One run's execution; the run id keys every write and the executor call.

    A failed execution waits up to RETRY_WINDOW for ``retry`` (run again) or
    ``cancel`` (give up). A cancel while the executor is working takes effect
    after it answers: the executor may already have acted on chain.
    """

    def __init__(
        self, order: RunOrder, policy: PaymentPolicy, *, state: str = "queued"
    ) -> None:
        self.order = order
        self.policy = policy
        self.state = state
        self.result: ExecutionResult | None = None
        self.error: str | None = None
        self.attempts = 0
        self.retry_requested = False
        self.cancel_reason: str | None = None

    async def run(self) -> RunOutcome:
        """Execute until completed, cancelled, or failed with no retry asked for."""
        while True:
            if self.cancel_reason is not None:
                return await self._cancel()

            await self._attempt()
            if self.state == "completed":
                return self.outcome()

            if not await self._wait_for_operator():
                return self.outcome()
            if self.cancel_reason is not None:
                # A failed run stays failed: cancelling it only ends the wait.
                return self.outcome()
            self.retry_requested = False
            await self._move("queued")

    async def fail_unpaid(self, error: str) -> None:
        """A run whose payment was refused: failed, never executed."""
        self.error = error
        await self._move("failed", error=error)

    def outcome(self) -> RunOutcome:
        return RunOutcome(
            run_id=self.order.run_id,
            run_state=self.state,
            execution=self.result,
            error=self.error,
        )

    async def _attempt(self) -> None:
        self.attempts += 1
        await self._move("running")
        started = workflow.now()
        try:
            self.result = await workflow.execute_activity(
                "execute_run",
                ExecutionRequest(
                    order=self.order,
                    strict=self.policy.strict_execution,
                    allow_simulated=self.policy.allow_simulated_execution,
                ),
                result_type=ExecutionResult,
                start_to_close_timeout=EXECUTOR_TIMEOUT,
                heartbeat_timeout=EXECUTOR_HEARTBEAT_TIMEOUT,
                retry_policy=EXECUTOR_RETRY,
                summary=f"execute run {self.order.run_id} ({self.order.action})",
            )
        except ActivityError as failure:
            self.error = _cause(failure)
            workflow.logger.error(
                "run failed run_id=%s error=%s", self.order.run_id, self.error
            )
            await self._move("failed", error=self.error)
            return

        seconds = (workflow.now() - started).total_seconds()
        await self._move(
            "completed",
            result=self.result.model_dump(mode="json"),
            execution_tx_hashes=self.result.tx_hashes,
            execution_seconds=seconds,
        )
        workflow.logger.info(
            "run finished run_id=%s simulated=%s",
            self.order.run_id,
            self.result.simulated,
        )

    async def _wait_for_operator(self) -> bool:
        """Whether an operator asked for a retry or a cancel within the window."""
        try:
            await workflow.wait_condition(
                lambda: self.retry_requested or self.cancel_reason is not None,
                timeout=RETRY_WINDOW,
                timeout_summary="failed run: waiting for an operator retry",
            )
        except TimeoutError:
            return False
        return True

    async def _cancel(self) -> RunOutcome:
        self.error = f"cancelled: {self.cancel_reason}"
        await self._move("cancelled", error=self.error)
        return self.outcome()

    async def _move(self, to_status: str, **fields: object) -> None:
        self.state = to_status
        await workflow.execute_activity(
            "move_run",
            RunTransition(run_id=self.order.run_id, to_status=to_status, **fields),
            start_to_close_timeout=LEDGER_TIMEOUT,
            retry_policy=LEDGER_RETRY,
            summary=f"run {self.order.run_id} -> {to_status}",
        )


def _cause(failure: ActivityError) -> str:
    """The innermost message of an activity failure, which names what went wrong."""
    error: BaseException = failure
    while error.__cause__ is not None:
        error = error.__cause__
    return str(error) or type(error).__name__
