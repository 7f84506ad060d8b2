"""POST /runs end to end: 402, pay, 201 or 202, idempotency, isolation."""

import asyncio
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from protocol.models import Challenge
from tests.api.stack import Stack
from tests.factories import TX_HASH, make_payment
from tests.harness.executor import StarkzapExecutor
from tests.harness.starknet_node import StarknetNode, accepted_on_l2, pre_confirmed

STAKE = {"agent_id": "steward", "action": "stake", "params": {"amount": "100"}}


async def ask_for_challenge(api: httpx.AsyncClient, body: dict[str, Any]) -> Challenge:
    answer = await api.post("/api/v1/marketplace/runs", json=body)
    assert answer.status_code == 402, answer.text
    return Challenge.model_validate(answer.json()["challenge"])


def paid_headers(challenge: Challenge, replay_key: str = "rk_e2e") -> dict[str, str]:
    payment = make_payment(challenge, replay_key=replay_key)
    return {
        "x-x402-challenge": challenge.model_dump_json(exclude_none=True),
        "x-x402-payment": payment.model_dump_json(),
    }


async def test_paid_run_settles_at_once_and_completes(
    stack: Stack, starknet_node: StarknetNode, starkzap_executor: StarkzapExecutor
) -> None:
    starknet_node.script(TX_HASH, accepted_on_l2())
    async with stack.client() as api:
        challenge = await ask_for_challenge(api, STAKE)

        answer = await api.post(
            "/api/v1/marketplace/runs", json=STAKE, headers=paid_headers(challenge)
        )

    assert answer.status_code == 201, answer.text
    run = answer.json()["run"]
    assert run["status"] == "completed"
    assert run["payment_ref"] == "pay_rk_e2e"
    assert starkzap_executor.executions_for(run["run_id"]) == 1


async def test_pending_payment_answers_202_then_completes(
    stack: Stack, starknet_node: StarknetNode
) -> None:
    starknet_node.script(TX_HASH, *[pre_confirmed()] * 4, accepted_on_l2())
    async with stack.client() as api:
        challenge = await ask_for_challenge(api, STAKE)

        answer = await api.post(
            "/api/v1/marketplace/runs", json=STAKE, headers=paid_headers(challenge)
        )
        run_id = answer.json()["run"]["run_id"]
        status = answer.json()["run"]["status"]
        for _ in range(100):
            if status == "completed":
                break
            await asyncio.sleep(0.2)
            read = await api.get(f"/api/v1/marketplace/runs/{run_id}")
            status = read.json()["run"]["status"]

    assert answer.status_code == 202, answer.text
    assert answer.json()["payment"]["status"] == "pending"
    assert status == "completed"


async def test_challenge_endpoint_signs_the_terms_it_was_given(stack: Stack) -> None:
    terms = {"recipient": "0xABC", "minAmount": "42", "context": {"order": 7}}

    async with stack.client() as api:
        answer = await api.post(
            "/api/v1/marketplace/payments/x402/challenge", json=terms
        )

    assert answer.status_code == 200, answer.text
    challenge = answer.json()["challenge"]
    assert "tongoRecipient" not in challenge
    assert (challenge["recipient"], challenge["minAmount"]) == ("0xabc", "42")
    assert Challenge.model_validate_json(answer.headers["x-x402-challenge"]) == (
        Challenge.model_validate(challenge)
    )


async def test_paid_run_workflow_carries_its_terms_in_the_memo(
    stack: Stack, starknet_node: StarknetNode, temporal_dev_env: WorkflowEnvironment
) -> None:
    starknet_node.script(TX_HASH, accepted_on_l2())
    async with stack.client() as api:
        challenge = await ask_for_challenge(api, STAKE)
        await api.post(
            "/api/v1/marketplace/runs",
            json=STAKE,
            headers=paid_headers(challenge, replay_key="rk_memo"),
        )

    described = await temporal_dev_env.client.get_workflow_handle(
        "pay_rk_memo"
    ).describe()
    memo = await described.memo()

    assert memo["amount"] == "100 STRK"
    assert memo["agent"] == "steward" and memo["action"] == "stake"
    assert memo["runId"].startswith("run_")
