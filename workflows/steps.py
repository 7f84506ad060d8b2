"""Activity calls of the payment workflow, with the timeouts and retries they need."""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from protocol.models import ReasonCode
    from workflows.execution import FINAL_STORE_ERRORS
    from workflows.models import ReceiptCheck, ReceiptCheckInput, ReceiptOutcome

# Fast, bounded steps on the settle answer's path run as local activities.
LOCAL_TIMEOUT = timedelta(seconds=10)
LOCAL_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=FINAL_STORE_ERRORS,
)
# The first receipt check may not hold up the answer: after two tries it's pending.
FIRST_CHECK_TIMEOUT = timedelta(seconds=15)
FIRST_CHECK_RETRY = RetryPolicy(maximum_attempts=2)
CHECK_TIMEOUT = timedelta(seconds=30)
CHECK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=20),
    maximum_attempts=5,
)


async def run_local(
    activity: str, arg: object, result_type: type | None, summary: str
) -> Any:
    """A fast, bounded step of the settle answer, as a local activity."""
    return await workflow.execute_local_activity(
        activity,
        arg,
        result_type=result_type,
        start_to_close_timeout=LOCAL_TIMEOUT,
        retry_policy=LOCAL_RETRY,
        summary=summary,
    )


async def check_receipt(
    check_input: ReceiptCheckInput, *, first: bool, summary: str
) -> ReceiptCheck:
    """One receipt check; when every RPC endpoint keeps failing, it is pending.

    The first check answers a waiting client, so it is a local activity tried
    twice; later checks are regular activities with a longer retry.
    """
    try:
        if first:
            return await workflow.execute_local_activity(
                "check_receipt",
                check_input,
                result_type=ReceiptCheck,
                start_to_close_timeout=FIRST_CHECK_TIMEOUT,
                retry_policy=FIRST_CHECK_RETRY,
                summary=summary,
            )
        return await workflow.execute_activity(
            "check_receipt",
            check_input,
            result_type=ReceiptCheck,
            start_to_close_timeout=CHECK_TIMEOUT,
            retry_policy=CHECK_RETRY,
            summary=summary,
        )
    except ActivityError as failure:
        return ReceiptCheck(
            outcome=ReceiptOutcome.PENDING,
            detail=f"{ReasonCode.RPC_FAILURE}: {failure.cause or failure}",
        )
