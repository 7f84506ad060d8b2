"""The payment workflow on the time-skipping server, with real activities."""

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from protocol.models import ReasonCode
from tests.factories import TX_HASH, make_challenge, make_payment
from tests.harness.executor import API_KEY, StarkzapExecutor
from tests.harness.starknet_node import (
    StarknetNode,
    Transfer,
    accepted_on_l2,
    http_error,
    not_found,
    pre_confirmed,
    reverted,
)
from tests.waiting import eventually
from tests.workflows.rails import Rails, running_rails
from workflows.models import PaymentPolicy, PaymentProgress
from workflows.payment import MAX_CHECKS_PER_RUN, PaymentWorkflow

STRANGER = "0x7ea1c3e9b5d1f0a2c4e6a8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f"


async def payment_row(rails: Rails, replay_key: str) -> asyncpg.Record:
    return await rails.fetchrow(
        "select * from x402_payments where replay_key = $1", replay_key
    )


async def test_payment_accepted_on_l2_settles_at_once_and_runs(
    rails: Rails, starknet_node: StarknetNode, starkzap_executor: StarkzapExecutor
) -> None:
    starknet_node.script(TX_HASH, accepted_on_l2())
    run = await rails.create_run()
    challenge, payment = rails.presentation()

    answer, handle = await rails.settle(challenge, payment, run=run)
    outcome = await rails.result(handle)

    assert answer.status == "settled"
    assert answer.receipt is not None
    assert answer.receipt["paymentRef"] == payment.payment_ref
    assert outcome.run is not None and outcome.run.run_state == "completed"
    assert starkzap_executor.executions_for(run.run_id) == 1
    row = await payment_row(rails, payment.replay_key)
    assert (row["status"], row["finality"]) == ("settled", "ACCEPTED_ON_L2")
    assert row["receipt"] == answer.receipt
    run_row = await rails.fetchrow(
        "select status, payment_ref from agent_runs where run_id = $1", run.run_id
    )
    assert (run_row["status"], run_row["payment_ref"]) == (
        "completed",
        payment.payment_ref,
    )


async def test_pending_payment_settles_after_several_checks(
    rails: Rails, starknet_node: StarknetNode, starkzap_executor: StarkzapExecutor
) -> None:
    starknet_node.script(
        TX_HASH, not_found(), pre_confirmed(), pre_confirmed(), accepted_on_l2()
    )
    run = await rails.create_run()
    challenge, payment = rails.presentation()

    answer, handle = await rails.settle(challenge, payment, run=run)
    outcome = await rails.result(handle)
    progress = await handle.query(PaymentWorkflow.status)

    assert answer.status == "pending"
    assert outcome.decision.status == "settled"
    assert progress.check_count == 4
    assert [check.outcome for check in progress.checks] == [
        "pending",
        "pending",
        "pending",
        "settled",
    ]
    assert outcome.run is not None and outcome.run.run_state == "completed"
    assert starkzap_executor.executions_for(run.run_id) == 1


async def test_reverted_transaction_fails_payment_and_run(
    rails: Rails, starknet_node: StarknetNode, starkzap_executor: StarkzapExecutor
) -> None:
    starknet_node.script(TX_HASH, reverted())
    run = await rails.create_run()
    challenge, payment = rails.presentation()

    answer, handle = await rails.settle(challenge, payment, run=run)
    outcome = await rails.result(handle)

    assert answer.status == "failed"
    assert answer.reason_code is ReasonCode.SETTLEMENT_FAILED
    assert "u256_sub Overflow" in answer.detail
    assert outcome.run is not None and outcome.run.run_state == "failed"
    assert starkzap_executor.executions_for(run.run_id) == 0
    row = await payment_row(rails, payment.replay_key)
    assert (row["status"], row["reason_code"]) == ("rejected", "SETTLEMENT_FAILED")


async def test_transaction_paying_someone_else_fails_settlement(
    rails: Rails, starknet_node: StarknetNode
) -> None:
    starknet_node.script(TX_HASH, accepted_on_l2(Transfer(to=STRANGER)))
    challenge, payment = rails.presentation()

    answer, _ = await rails.settle(challenge, payment)

    assert answer.status == "failed"
    assert answer.reason_code is ReasonCode.SETTLEMENT_FAILED
    assert "no Transfer of at least 100 STRK" in answer.detail


async def test_transaction_never_found_times_out_at_the_deadline(
    rails: Rails, starknet_node: StarknetNode
) -> None:
    run = await rails.create_run()
    challenge, payment = rails.presentation()
    policy = PaymentPolicy(timeout_seconds=1800)

    answer, handle = await rails.settle(challenge, payment, run=run, policy=policy)
    outcome = await rails.result(handle)
    progress = await handle.query(PaymentWorkflow.status)

    assert answer.status == "pending"
    assert outcome.decision.status == "failed"
    assert outcome.decision.reason_code is ReasonCode.TIMEOUT
    assert outcome.run is not None and outcome.run.run_state == "failed"
    # Default intervals 2, 4, ..., 256 s, then 300 s: 14 checks in 30 minutes.
    assert progress.check_count == 14
    assert starknet_node.count("getTransactionReceipt", TX_HASH) == progress.check_count
    row = await payment_row(rails, payment.replay_key)
    assert (row["status"], row["reason_code"]) == ("rejected", "TIMEOUT")
    history = await handle.fetch_history()
    assert len(history.events) < 200


async def test_cancel_while_waiting_rejects_payment_and_cancels_run(
    rails: Rails, starknet_node: StarknetNode
) -> None:
    starknet_node.script(TX_HASH, pre_confirmed())
    run = await rails.create_run()
    challenge, payment = rails.presentation()
    answer, handle = await rails.settle(challenge, payment, run=run)

    await handle.signal(PaymentWorkflow.cancel, "customer asked")
    outcome = await rails.result(handle)

    assert answer.status == "pending"
    assert outcome.decision.status == "rejected"
    assert "customer asked" in outcome.decision.detail
    assert outcome.run is not None and outcome.run.run_state == "cancelled"
    status = await rails.fetchval(
        "select status from agent_runs where run_id = $1", run.run_id
    )
    assert status == "cancelled"
    events = await rails.fetchval(
        "select count(*) from x402_payment_events where payment_ref = $1"
        " and signal = 'operator_cancel'",
        payment.payment_ref,
    )
    assert events == 1


async def test_retry_signal_checks_the_receipt_at_once(
    rails: Rails, starknet_node: StarknetNode
) -> None:
    starknet_node.script(TX_HASH, pre_confirmed(), accepted_on_l2())
    challenge, payment = rails.presentation()
    # An hour between checks: only the retry can explain a second check now.
    slow = rails.policy.model_copy(update={"first_interval_seconds": 3600})
    answer, handle = await rails.settle(challenge, payment, policy=slow)

    await handle.signal(PaymentWorkflow.retry)

    async def settled() -> bool:
        progress: PaymentProgress = await handle.query(PaymentWorkflow.status)
        return progress.payment_state == "settled"

    await eventually(settled)
    assert answer.status == "pending"
    assert starknet_node.count("getTransactionReceipt", TX_HASH) == 2


async def test_same_payment_settled_twice_gives_one_answer_and_one_run(
    rails: Rails, starknet_node: StarknetNode, starkzap_executor: StarkzapExecutor
) -> None:
    starknet_node.script(TX_HASH, accepted_on_l2())
    run = await rails.create_run()
    challenge, payment = rails.presentation()
    first, handle = await rails.settle(challenge, payment, run=run)

    second, _ = await rails.settle(challenge, payment, run=run)
    await rails.result(handle)

    assert second == first
    assert await rails.fetchval("select count(*) from x402_payments") == 1
    assert starkzap_executor.executions_for(run.run_id) == 1
    signals = await rails.fetchval(
        "select array_agg(signal order by event_id) from x402_payment_events"
        " where kind = 'signal' and payment_ref = $1",
        payment.payment_ref,
    )
    assert signals == ["settle_settled", "replay_settled"]


async def test_different_payload_under_the_same_replay_key_is_a_replay(
    rails: Rails, starknet_node: StarknetNode
) -> None:
    starknet_node.script(TX_HASH, accepted_on_l2())
    challenge, payment = rails.presentation()
    await rails.settle(challenge, payment)
    other = payment.model_copy(update={"nonce": "another-nonce"})

    answer, _ = await rails.settle(challenge, other)

    assert answer.status == "rejected"
    assert answer.reason_code is ReasonCode.REPLAY_DETECTED
    row = await payment_row(rails, payment.replay_key)
    assert row["status"] == "settled"


async def test_one_transaction_cannot_pay_for_two_payments(
    rails: Rails, starknet_node: StarknetNode
) -> None:
    starknet_node.script(TX_HASH, accepted_on_l2())
    first_challenge, first_payment = rails.presentation()
    second_challenge, second_payment = rails.presentation()
    await rails.settle(first_challenge, first_payment)

    answer, handle = await rails.settle(second_challenge, second_payment)
    await rails.result(handle)

    assert answer.status == "rejected"
    assert answer.reason_code is ReasonCode.REPLAY_DETECTED
    assert await payment_row(rails, second_payment.replay_key) is None


async def test_update_for_another_replay_key_is_refused_before_recording(
    rails: Rails, starknet_node: StarknetNode
) -> None:
    starknet_node.script(TX_HASH, pre_confirmed())
    challenge, payment = rails.presentation()
    _, handle = await rails.settle(challenge, payment)
    stranger = payment.model_copy(update={"replay_key": "rk_someone_else"})

    with pytest.raises(WorkflowUpdateFailedError) as raised:
        await handle.execute_update(
            PaymentWorkflow.settle,
            {"challenge": challenge, "payment": stranger},
        )

    assert "does not belong" in str(raised.value.cause)
    events = await rails.fetchval(
        "select count(*) from x402_payment_events where kind = 'signal'"
    )
    assert events == 1  # settle_pending of the first presentation only


async def test_expired_challenge_is_rejected_without_a_payment_row(
    rails: Rails,
) -> None:
    _, payment = rails.presentation()
    expired = make_challenge(challenge_id=f"ch_{uuid.uuid4().hex[:8]}")
    payment = make_payment(expired, replay_key=payment.replay_key)

    answer, _ = await rails.settle(expired, payment)

    assert answer.status == "rejected"
    assert answer.reason_code is ReasonCode.EXPIRED_PAYMENT
    assert await payment_row(rails, payment.replay_key) is None


async def test_strict_mode_without_executor_fails_the_run_saying_why(
    temporal_time_env: WorkflowEnvironment,
    db_pool: asyncpg.Pool,
    starknet_node: StarknetNode,
) -> None:
    starknet_node.script(TX_HASH, accepted_on_l2())
    strict = PaymentPolicy(strict_execution=True, allow_simulated_execution=False)
    async with running_rails(
        temporal_time_env, db_pool, rpc_urls=[starknet_node.url]
    ) as rails:
        run = await rails.create_run()
        challenge, payment = rails.presentation()

        answer, handle = await rails.settle(challenge, payment, run=run, policy=strict)
        outcome = await rails.result(handle)

    assert answer.status == "settled"
    assert outcome.run is not None and outcome.run.run_state == "failed"
    assert "STARKZAP_EXECUTOR_URL is not set" in (outcome.run.error or "")
    error = await rails.fetchval(
        "select error from agent_runs where run_id = $1", run.run_id
    )
    assert "MARKETPLACE_STRICT_ONCHAIN_EXECUTION" in error


async def test_without_executor_a_lenient_payment_runs_simulated(
    temporal_time_env: WorkflowEnvironment,
    db_pool: asyncpg.Pool,
    starknet_node: StarknetNode,
) -> None:
    starknet_node.script(TX_HASH, accepted_on_l2())
    async with running_rails(
        temporal_time_env, db_pool, rpc_urls=[starknet_node.url]
    ) as rails:
        run = await rails.create_run()
        challenge, payment = rails.presentation()

        _, handle = await rails.settle(challenge, payment, run=run)
        outcome = await rails.result(handle)

    assert outcome.run is not None and outcome.run.run_state == "completed"
    assert outcome.run.execution is not None and outcome.run.execution.simulated
    result = await rails.fetchval(
        "select result from agent_runs where run_id = $1", run.run_id
    )
    assert result["simulated"] is True
    assert "STARKZAP_EXECUTOR_URL" in result["fallback_reason"]


async def test_executor_failing_twice_executes_the_run_exactly_once(
    rails: Rails, starknet_node: StarknetNode, starkzap_executor: StarkzapExecutor
) -> None:
    starknet_node.script(TX_HASH, accepted_on_l2())
    starkzap_executor.fail_next(2, status=503)
    run = await rails.create_run()
    challenge, payment = rails.presentation()

    _, handle = await rails.settle(challenge, payment, run=run)
    outcome = await rails.result(handle)

    assert outcome.run is not None and outcome.run.run_state == "completed"
    calls = [call.outcome for call in starkzap_executor.calls_for(run.run_id)]
    assert calls == ["injected_failure", "injected_failure", "executed"]
    assert starkzap_executor.executions_for(run.run_id) == 1


async def test_primary_rpc_down_settles_through_the_fallback(
    temporal_time_env: WorkflowEnvironment,
    db_pool: asyncpg.Pool,
    starknet_node_factory: Callable[..., StarknetNode],
) -> None:
    primary, fallback = starknet_node_factory(), starknet_node_factory()
    primary.script(TX_HASH, http_error(503))
    fallback.script(TX_HASH, accepted_on_l2())
    async with running_rails(
        temporal_time_env,
        db_pool,
        rpc_urls=[primary.url, fallback.url],
        executor_url=None,
        executor_key=API_KEY,
    ) as rails:
        challenge, payment = rails.presentation()

        answer, _ = await rails.settle(challenge, payment)

    assert answer.status == "settled"
    assert primary.count("getTransactionReceipt", TX_HASH) >= 1
    assert fallback.count("getTransactionReceipt", TX_HASH) == 1


async def test_long_wait_continues_as_new_and_still_settles(
    rails: Rails, starknet_node: StarknetNode, starkzap_executor: StarkzapExecutor
) -> None:
    checks_before_final = MAX_CHECKS_PER_RUN + 20
    starknet_node.script(
        TX_HASH, *[not_found()] * checks_before_final, accepted_on_l2()
    )
    run = await rails.create_run()
    challenge, payment = rails.presentation()
    every_second = PaymentPolicy(
        first_interval_seconds=1, max_interval_seconds=1, timeout_seconds=3600
    )

    answer, handle = await rails.settle(
        challenge, payment, run=run, policy=every_second
    )
    outcome = await rails.result(handle)
    described = await handle.describe()
    progress = await handle.query(PaymentWorkflow.status)
    again, _ = await rails.settle(challenge, payment, run=run, policy=every_second)

    assert answer.status == "pending"
    assert outcome.decision.status == "settled"
    assert outcome.run is not None and outcome.run.run_state == "completed"
    assert described.run_id != handle.first_execution_run_id
    assert progress.check_count == checks_before_final + 1
    assert again == outcome.decision
    assert starkzap_executor.executions_for(run.run_id) == 1


async def test_pending_payment_whose_workflow_ended_resumes_after_expiry(
    rails: Rails, starknet_node: StarknetNode, starkzap_executor: StarkzapExecutor
) -> None:
    starknet_node.script(TX_HASH, pre_confirmed())
    run = await rails.create_run()
    challenge = make_challenge(
        now=datetime.now(UTC), expiry_seconds=1, challenge_id="ch_short_lived"
    )
    payment = make_payment(challenge, replay_key=f"rk_{uuid.uuid4().hex[:12]}")
    _, first = await rails.settle(challenge, payment, run=run)
    await first.terminate("lost workflow")
    await asyncio.sleep(1.5)  # the challenge expires, the claim stays pending
    starknet_node.script(TX_HASH, accepted_on_l2())

    answer, handle = await rails.settle(challenge, payment, run=run)
    outcome = await rails.result(handle)

    assert answer.status == "settled"
    assert outcome.run is not None and outcome.run.run_state == "completed"
    assert starkzap_executor.executions_for(run.run_id) == 1
