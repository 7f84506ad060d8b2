"""The durable Idempotency-Key of POST /runs: replay, reuse, in flight, release."""

import asyncio
import uuid

import httpx

from protocol.models import Challenge
from tests.api.stack import (
    RUNS,
    Stack,
    challenge_for_run,
    new_replay_key,
    new_tx_hash,
    x402_headers,
)
from tests.factories import make_payment
from tests.harness.executor import StarkzapExecutor
from tests.harness.starknet_node import StarknetNode, accepted_on_l2

STAKE = {"agent_id": "steward", "action": "stake", "params": {"amount": "100"}}
REPLAY_HEADER = "x-idempotent-replay"


def new_idempotency_key() -> str:
    return f"idem-{uuid.uuid4().hex}"


def paid_headers(
    node: StarknetNode, challenge: Challenge, idempotency_key: str
) -> dict[str, str]:
    """x402 headers of a fresh payment, its tx final at once, and the key."""
    tx_hash = new_tx_hash()
    node.script(tx_hash, accepted_on_l2())
    payment = make_payment(
        challenge, replay_key=new_replay_key(), settlement_tx_hash=tx_hash
    )
    return x402_headers(challenge, payment) | {"Idempotency-Key": idempotency_key}


async def test_repeated_paid_request_replays_first_answer(
    stack: Stack, starknet_node: StarknetNode, starkzap_executor: StarkzapExecutor
) -> None:
    key = new_idempotency_key()
    async with stack.client() as api:
        challenge = await challenge_for_run(api, STAKE)
        headers = paid_headers(starknet_node, challenge, key)

        first = await api.post(RUNS, json=STAKE, headers=headers)
        second = await api.post(RUNS, json=STAKE, headers=headers)

    assert first.status_code == 201, first.text
    assert second.status_code == first.status_code
    assert second.json() == first.json()
    assert REPLAY_HEADER not in first.headers
    assert second.headers[REPLAY_HEADER] == "true"
    assert starkzap_executor.executions_for(first.json()["run"]["run_id"]) == 1
    assert len(starkzap_executor.executions) == 1


async def test_same_key_with_other_body_answers_key_reused(
    stack: Stack, starknet_node: StarknetNode
) -> None:
    key = new_idempotency_key()
    other = STAKE | {"params": {"amount": "200"}}
    async with stack.client() as api:
        challenge = await challenge_for_run(api, STAKE)
        headers = paid_headers(starknet_node, challenge, key)
        first = await api.post(RUNS, json=STAKE, headers=headers)
        assert first.status_code == 201, first.text

        answer = await api.post(RUNS, json=other, headers=headers)

    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert REPLAY_HEADER not in answer.headers


async def test_request_while_first_in_flight_answers_409(
    stack: Stack, starknet_node: StarknetNode, starkzap_executor: StarkzapExecutor
) -> None:
    key = new_idempotency_key()
    starkzap_executor.slow(1.5)
    async with stack.client() as api:
        challenge = await challenge_for_run(api, STAKE)
        headers = paid_headers(starknet_node, challenge, key)

        answers: list[httpx.Response] = await asyncio.gather(
            api.post(RUNS, json=STAKE, headers=headers),
            api.post(RUNS, json=STAKE, headers=headers),
        )

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201, 409], [answer.text for answer in answers]
    conflict = next(answer for answer in answers if answer.status_code == 409)
    assert conflict.json()["code"] == "IDEMPOTENCY_IN_FLIGHT"
    assert len(starkzap_executor.executions) == 1


async def test_unpaid_402_does_not_hold_the_key(
    stack: Stack, starknet_node: StarknetNode, starkzap_executor: StarkzapExecutor
) -> None:
    key = new_idempotency_key()
    async with stack.client() as api:
        unpaid = await api.post(RUNS, json=STAKE, headers={"Idempotency-Key": key})
        again = await api.post(RUNS, json=STAKE, headers={"Idempotency-Key": key})
        challenge = Challenge.model_validate(again.json()["challenge"])

        paid = await api.post(
            RUNS, json=STAKE, headers=paid_headers(starknet_node, challenge, key)
        )

    assert unpaid.status_code == again.status_code == 402, again.text
    assert REPLAY_HEADER not in again.headers
    assert unpaid.json()["challenge"] != again.json()["challenge"]
    assert paid.status_code == 201, paid.text
    assert paid.json()["run"]["status"] == "completed"
