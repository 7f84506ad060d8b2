"""execute_run calls the local Starkzap executor once per run id."""

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.execution import ExecutionActivities
from tests.harness.executor import API_KEY, StarkzapExecutor, tx_hash_for
from workflows.models import ExecutionRequest, ExecutionResult, RunOrder

ORDER = RunOrder(
    run_id="run_exec_1",
    agent_id="agent-1",
    action="stake",
    params={"amount": "10"},
    operator_wallet="0xabc",
)


STRICT = ExecutionRequest(order=ORDER, strict=True, allow_simulated=False)
LENIENT = ExecutionRequest(order=ORDER, strict=False, allow_simulated=True)


async def _execute(
    activities: ExecutionActivities, request: ExecutionRequest = STRICT
) -> ExecutionResult:
    try:
        return await ActivityEnvironment().run(activities.execute_run, request)
    finally:
        await activities.close()


async def test_run_is_executed_with_its_id_as_idempotency_key(
    starkzap_executor: StarkzapExecutor,
) -> None:
    activities = ExecutionActivities(starkzap_executor.url, API_KEY)

    result = await _execute(activities)

    assert result.tx_hashes == [tx_hash_for("run_exec_1")]
    assert not result.simulated
    assert starkzap_executor.executions_for("run_exec_1") == 1


async def test_repeated_call_does_not_execute_twice(
    starkzap_executor: StarkzapExecutor,
) -> None:
    first = await _execute(ExecutionActivities(starkzap_executor.url, API_KEY))

    second = await _execute(ExecutionActivities(starkzap_executor.url, API_KEY))

    assert first == second
    assert starkzap_executor.executions_for("run_exec_1") == 1


async def test_camel_case_tx_hashes_are_accepted() -> None:
    with StarkzapExecutor(camel_case=True) as executor:
        result = await _execute(ExecutionActivities(executor.url, API_KEY))

    assert result.tx_hashes == [tx_hash_for("run_exec_1")]


async def test_failing_executor_raises_a_retryable_error(
    starkzap_executor: StarkzapExecutor,
) -> None:
    starkzap_executor.fail_next(1, status=503)

    with pytest.raises(ApplicationError) as raised:
        await _execute(ExecutionActivities(starkzap_executor.url, API_KEY))

    assert raised.value.type == "EXECUTOR_UNAVAILABLE"
    assert not raised.value.non_retryable


async def test_wrong_api_key_is_a_final_refusal(
    starkzap_executor: StarkzapExecutor,
) -> None:
    with pytest.raises(ApplicationError) as raised:
        await _execute(ExecutionActivities(starkzap_executor.url, "wrong-key"))

    assert raised.value.type == "EXECUTOR_REJECTED"
    assert raised.value.non_retryable
    assert starkzap_executor.executions_for("run_exec_1") == 0


async def test_missing_executor_in_strict_mode_is_a_final_error() -> None:
    with pytest.raises(ApplicationError) as raised:
        await _execute(ExecutionActivities(None, None))

    assert raised.value.type == "EXECUTOR_NOT_CONFIGURED"
    assert raised.value.non_retryable
    assert "MARKETPLACE_STRICT_ONCHAIN_EXECUTION" in str(raised.value)


async def test_missing_executor_without_simulation_is_a_final_error() -> None:
    request = ExecutionRequest(order=ORDER, strict=False, allow_simulated=False)

    with pytest.raises(ApplicationError) as raised:
        await _execute(ExecutionActivities(None, None), request)

    assert "STARKZAP_ALLOW_SIMULATED_EXECUTION=false" in str(raised.value)


async def test_missing_executor_when_lenient_simulates_deterministically() -> None:
    first = await _execute(ExecutionActivities(None, None), LENIENT)

    second = await _execute(ExecutionActivities(None, None), LENIENT)

    assert first.simulated and first.fallback_reason
    assert "STARKZAP_EXECUTOR_URL" in first.fallback_reason
    assert first.tx_hashes == second.tx_hashes
    assert first.tx_hashes[0].startswith("0x")


async def test_configured_executor_is_used_even_when_simulation_is_allowed(
    starkzap_executor: StarkzapExecutor,
) -> None:
    result = await _execute(
        ExecutionActivities(starkzap_executor.url, API_KEY), LENIENT
    )

    assert not result.simulated
    assert starkzap_executor.executions_for("run_exec_1") == 1


async def test_slow_executor_call_heartbeats_while_it_waits(
    starkzap_executor: StarkzapExecutor,
) -> None:
    starkzap_executor.slow(2.5)
    environment = ActivityEnvironment()
    beats: list[object] = []
    environment.on_heartbeat = lambda *details: beats.append(details)
    activities = ExecutionActivities(starkzap_executor.url, API_KEY)

    try:
        result = await environment.run(activities.execute_run, STRICT)
    finally:
        await activities.close()

    assert result.tx_hashes == [tx_hash_for("run_exec_1")]
    assert len(beats) >= 1
