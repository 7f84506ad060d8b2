"""The local Starkzap executor runs each idempotency key once, over real HTTP."""

import asyncio
import time
from typing import Any

import httpx

from tests.harness.executor import (
    API_KEY,
    EXECUTE_PATH,
    StarkzapExecutor,
    tx_hash_for,
)

RUN = {"run_id": "run-1", "agent_id": "agent-7", "action": "swap", "params": {}}


def execute(
    executor: StarkzapExecutor,
    key: str | None = "run-1",
    *,
    api_key: str = API_KEY,
    body: dict[str, Any] = RUN,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {api_key}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return httpx.post(executor.url + EXECUTE_PATH, json=body, headers=headers)


def test_executor_executes_once_per_idempotency_key(
    starkzap_executor: StarkzapExecutor,
) -> None:
    first = execute(starkzap_executor, "run-1")

    replay = execute(starkzap_executor, "run-1")
    other = execute(starkzap_executor, "run-2")

    assert first.status_code == replay.status_code == 200
    assert replay.json() == first.json()
    assert first.json()["tx_hashes"] == [tx_hash_for("run-1")]
    assert first.json()["receipt"]["run_id"] == "run-1"
    assert other.json()["tx_hashes"] != first.json()["tx_hashes"]
    assert starkzap_executor.executions_for("run-1") == 1
    assert [c.outcome for c in starkzap_executor.calls_for("run-1")] == [
        "executed",
        "replayed",
    ]


def test_executor_fails_n_times_then_succeeds(
    starkzap_executor: StarkzapExecutor,
) -> None:
    starkzap_executor.fail_next(2)
    starkzap_executor.fail_next(1, status=500)

    statuses = [execute(starkzap_executor).status_code for _ in range(4)]

    assert statuses == [503, 503, 500, 200]
    assert starkzap_executor.executions_for("run-1") == 1
    assert len(starkzap_executor.calls) == 4


def test_executor_rejects_a_wrong_or_missing_key_with_401(
    starkzap_executor: StarkzapExecutor,
) -> None:
    wrong = execute(starkzap_executor, api_key="not-the-key")
    missing = httpx.post(
        starkzap_executor.url + EXECUTE_PATH, json=RUN, headers={"Idempotency-Key": "k"}
    )

    assert wrong.status_code == missing.status_code == 401
    assert wrong.json()["error"]["code"] == "UNAUTHORIZED"
    assert starkzap_executor.executions == []


def test_executor_requires_an_idempotency_key(
    starkzap_executor: StarkzapExecutor,
) -> None:
    response = execute(starkzap_executor, key=None)

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["message"]
    assert starkzap_executor.calls[0].outcome == "bad_request"


def test_executor_records_headers_and_body(
    starkzap_executor: StarkzapExecutor,
) -> None:
    execute(starkzap_executor, "run-9", body=RUN | {"run_id": "run-9"})

    [call] = starkzap_executor.calls

    assert call.idempotency_key == "run-9"
    assert call.headers["Authorization"] == f"Bearer {API_KEY}"
    assert call.body["run_id"] == "run-9"
    assert call.status == 200


def test_executor_delays_answers_when_slow(
    starkzap_executor: StarkzapExecutor,
) -> None:
    starkzap_executor.slow(0.3)

    started = time.monotonic()
    response = execute(starkzap_executor)

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_executor_answers_in_camel_case_when_asked() -> None:
    with StarkzapExecutor(camel_case=True) as executor:
        response = execute(executor, "run-1")

    assert response.json()["txHashes"] == [tx_hash_for("run-1")]
    assert "tx_hashes" not in response.json()


async def test_executor_executes_concurrent_duplicates_once(
    starkzap_executor: StarkzapExecutor,
) -> None:
    starkzap_executor.slow(0.2)
    headers = {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "run-1"}
    url = starkzap_executor.url + EXECUTE_PATH

    async with httpx.AsyncClient() as client:
        responses = await asyncio.gather(
            *(client.post(url, json=RUN, headers=headers) for _ in range(3))
        )

    assert {r.json()["tx_hashes"][0] for r in responses} == {tx_hash_for("run-1")}
    assert starkzap_executor.executions_for("run-1") == 1
