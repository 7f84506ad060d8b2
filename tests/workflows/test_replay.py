"""Recorded histories replay on today's workflows: the guard against nondeterminism."""

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, WorkflowReplayResult

from protocol.models import SettleResponse, payment_ref_for
from workflows import search_attributes as attrs
from workflows.models import (
    ChallengeCheckInput,
    PayAndRunRequest,
    PaymentInput,
    ReplayCheckInput,
)
from workflows.payment import PaymentWorkflow
from workflows.run import RunWorkflow

HISTORIES = Path(__file__).parent / "histories"
# Must match: the scenarios of scripts/record_histories.py.
EXPECTED_HISTORIES = {
    "payment_settled_with_run",
    "payment_pending_then_settled_with_run",
    "payment_reverted",
    "payment_cancelled_while_waiting",
    "payment_timed_out",
    "payment_refused_expired_challenge",
    "settle_repeated_while_pending",
    "settle_repeated_after_close",
    "payment_settled_after_continue_as_new",
    "free_run",
}


@workflow.defn(name="PaymentWorkflow", sandboxed=False)
class ReorderedPaymentWorkflow:
    """PaymentWorkflow's first steps, but checking the challenge before the replay key.

    Results stay untyped so that replay gets as far as core's marker check
    instead of failing earlier on a result that no longer fits its type.
    """

    def __init__(self) -> None:
        self._decision: SettleResponse | None = None

    @workflow.run
    async def run(self, start: PaymentInput) -> None:
        ref = payment_ref_for(start.payment.replay_key)
        identity = [attrs.X402_PAYMENT_REF.value_set(ref)]
        if start.run is not None:
            identity.append(attrs.X402_RUN_ID.value_set(start.run.run_id))
            identity.append(attrs.X402_AGENT_ID.value_set(start.run.agent_id))
        workflow.upsert_search_attributes(identity)
        workflow.upsert_search_attributes([attrs.X402_STATE.value_set("challenge")])

        timeout = timedelta(seconds=10)
        await workflow.execute_local_activity(
            "check_challenge",
            ChallengeCheckInput(challenge=start.challenge, payment=start.payment),
            start_to_close_timeout=timeout,
        )
        await workflow.execute_local_activity(
            "read_replay",
            ReplayCheckInput(payment=start.payment),
            start_to_close_timeout=timeout,
        )
        self._decision = SettleResponse(status="rejected", payment_ref=ref)

    @workflow.update
    async def pay_and_run(self, request: PayAndRunRequest) -> SettleResponse:
        await workflow.wait_condition(lambda: self._decision is not None)
        assert self._decision is not None
        return self._decision


def load(path: Path) -> WorkflowHistory:
    # The JSON holds events only; the workflow id plays no part in replay.
    return WorkflowHistory.from_json(path.stem, path.read_text())


async def replay(history: WorkflowHistory, *workflows: type) -> WorkflowReplayResult:
    replayer = Replayer(workflows=workflows, data_converter=pydantic_data_converter)
    return await replayer.replay_workflow(history, raise_on_replay_failure=False)


@pytest.mark.parametrize(
    "path", sorted(HISTORIES.glob("*.json")), ids=lambda path: path.stem
)
async def test_recorded_history_replays_on_current_workflows(path: Path) -> None:
    history = load(path)

    result = await replay(history, PaymentWorkflow, RunWorkflow)

    assert result.replay_failure is None, (
        f"{path.name} no longer replays: {result.replay_failure}\n"
        "If the workflow change is intentional and no workflow of the old shape"
        " is still running, re-record: .venv/bin/python scripts/record_histories.py"
    )


def test_histories_folder_holds_every_scenario() -> None:
    recorded = {path.stem for path in HISTORIES.glob("*.json")}

    missing = EXPECTED_HISTORIES - recorded

    assert not missing, (
        f"histories missing from {HISTORIES}: {sorted(missing)};"
        " record them with .venv/bin/python scripts/record_histories.py"
    )


async def test_reordered_local_activities_fail_replay_as_nondeterministic() -> None:
    history = load(HISTORIES / "payment_settled_with_run.json")

    result = await replay(history, ReorderedPaymentWorkflow, RunWorkflow)

    assert isinstance(result.replay_failure, workflow.NondeterminismError)
    assert "'read_replay' does not match" in str(result.replay_failure)
