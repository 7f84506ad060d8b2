"""Payment endpoints end to end: settle, reconcile, status, metrics, health, docs."""

import json
from typing import Any

import pytest
from fastapi.routing import APIRoute
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from protocol.models import Challenge, PaymentPayload
from tests.api.stack import (
    PAYMENTS,
    RECONCILE_SECRET,
    RUNS,
    Stack,
    challenge_for_run,
    new_replay_key,
    new_tx_hash,
    poll,
    presentation,
    x402_headers,
)
from tests.factories import RECIPIENT, make_payment
from tests.harness.executor import StarkzapExecutor
from tests.harness.starknet_node import StarknetNode, accepted_on_l2, pre_confirmed
from tests.workflows.rails import pydantic_client

STAKE = {"agent_id": "steward", "action": "stake", "params": {"amount": "100"}}
SWAP = {"agent_id": "free-swapper", "action": "swap", "params": {"pair": "STRK/USDC"}}
TERMS = {"recipient": RECIPIENT, "minAmount": "100"}


async def mint_payment(
    stack: Stack, node: StarknetNode, *steps: Any
) -> tuple[Challenge, PaymentPayload]:
    """A challenge from the challenge endpoint and a payment whose tx runs ``steps``."""
    async with stack.anonymous_client() as api:
        answer = await api.post(f"{PAYMENTS}/challenge", json=TERMS)
    assert answer.status_code == 200, answer.text
    challenge = Challenge.model_validate(answer.json()["challenge"])
    tx_hash = new_tx_hash()
    node.script(tx_hash, *steps)
    payment = make_payment(
        challenge, replay_key=new_replay_key(), settlement_tx_hash=tx_hash
    )
    return challenge, payment


async def test_verify_accepts_good_payment_without_recording_it(
    stack: Stack, starknet_node: StarknetNode
) -> None:
    challenge, payment = await mint_payment(stack, starknet_node, accepted_on_l2())

    async with stack.anonymous_client() as api:
        answer = await api.post(
            f"{PAYMENTS}/verify", json=presentation(challenge, payment)
        )

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "accepted"
    assert answer.json()["paymentRef"] == payment.payment_ref
    assert await stack.fetchval("select count(*) from x402_payments") == 0


async def test_settle_twice_gives_same_answer_and_one_row(
    stack: Stack, starknet_node: StarknetNode
) -> None:
    challenge, payment = await mint_payment(stack, starknet_node, accepted_on_l2())
    body = presentation(challenge, payment)

    async with stack.anonymous_client() as api:
        first = await api.post(f"{PAYMENTS}/settle", json=body)
        second = await api.post(f"{PAYMENTS}/settle", json=body)

    assert first.status_code == second.status_code == 200, first.text
    assert first.json()["status"] == "settled"
    assert second.json() == first.json()
    # The second answer comes from Postgres, whose jsonb reorders the receipt's
    # keys; the signature covers the fields, not the text.
    receipt = json.loads(first.headers["x-x402-receipt"])
    assert json.loads(second.headers["x-x402-receipt"]) == receipt
    assert await stack.fetchval("select count(*) from x402_payments") == 1


async def test_settle_of_used_challenge_answers_replay_detected(
    stack: Stack, starknet_node: StarknetNode
) -> None:
    challenge, first = await mint_payment(stack, starknet_node, accepted_on_l2())
    tx_hash = new_tx_hash()
    starknet_node.script(tx_hash, accepted_on_l2())
    second = make_payment(
        challenge, replay_key=new_replay_key(), settlement_tx_hash=tx_hash
    )

    async with stack.anonymous_client() as api:
        settled = await api.post(
            f"{PAYMENTS}/settle", json=presentation(challenge, first)
        )
        refused = await api.post(
            f"{PAYMENTS}/settle", json=presentation(challenge, second)
        )

    assert settled.json()["status"] == "settled", settled.text
    assert refused.status_code == 200, refused.text
    assert refused.json()["status"] == "rejected"
    assert refused.json()["reasonCode"] == "REPLAY_DETECTED"
    assert await stack.fetchval("select count(*) from x402_payments") == 1


async def test_read_payment_shows_status_stage_and_checks(
    stack: Stack, starknet_node: StarknetNode
) -> None:
    challenge, payment = await mint_payment(stack, starknet_node, accepted_on_l2())
    async with stack.anonymous_client() as api:
        settled = await api.post(
            f"{PAYMENTS}/settle", json=presentation(challenge, payment)
        )
        assert settled.status_code == 200, settled.text

        answer = await api.get(f"{PAYMENTS}/payments/{payment.payment_ref}")
        missing = await api.get(f"{PAYMENTS}/payments/pay_{new_replay_key()}")

    assert answer.status_code == 200, answer.text
    shown = answer.json()
    assert shown["paymentRef"] == payment.payment_ref
    assert shown["status"] == "settled"
    assert shown["stage"] == "settled"
    assert shown["checkCount"] == 1
    assert shown["receipt"] is not None
    assert missing.status_code == 404, missing.text
    assert missing.json()["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"x-x402-reconcile-secret": "wrong"}],
    ids=["no-secret", "wrong-bearer", "wrong-header"],
)
async def test_reconcile_without_secret_answers_401(
    stack: Stack, headers: dict[str, str]
) -> None:
    async with stack.anonymous_client(**headers) as api:
        answer = await api.post(f"{PAYMENTS}/reconcile")

    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {RECONCILE_SECRET}"},
        {"x-x402-reconcile-secret": RECONCILE_SECRET},
    ],
    ids=["bearer", "header"],
)
async def test_reconcile_with_secret_answers_summary(
    stack: Stack, headers: dict[str, str]
) -> None:
    async with stack.anonymous_client(**headers) as api:
        answer = await api.post(f"{PAYMENTS}/reconcile")

    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert summary.keys() == {"scanned", "retried", "started", "failed"}
    assert (summary["scanned"], summary["started"], summary["failed"]) == (0, 0, 0)


@pytest.mark.parametrize("limit", [0, 501])
async def test_reconcile_limit_out_of_bounds_answers_400(
    stack: Stack, limit: int
) -> None:
    async with stack.client(RECONCILE_SECRET) as api:
        answer = await api.post(f"{PAYMENTS}/reconcile", params={"limit": limit})

    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "INVALID_REQUEST"
    assert "limit" in answer.json()["details"]["fields"][0]


async def test_reconcile_restarts_orphaned_pending_payment(
    stack: Stack, starknet_node: StarknetNode, temporal_dev_env: WorkflowEnvironment
) -> None:
    challenge, payment = await mint_payment(stack, starknet_node, pre_confirmed())
    ref = payment.payment_ref
    async with stack.anonymous_client() as api:
        pending = await api.post(
            f"{PAYMENTS}/settle", json=presentation(challenge, payment)
        )
    assert pending.json()["status"] == "pending", pending.text
    temporal = pydantic_client(temporal_dev_env)
    await temporal.get_workflow_handle(ref).terminate(reason="orphan for reconcile")
    async with stack.db() as conn:
        await conn.execute(
            "update x402_payments set created_at = now() - interval '1 minute'"
            " where replay_key = $1",
            payment.replay_key,
        )
    tx_hash = json.loads(payment.proof)["settlementTxHash"]
    starknet_node.script(tx_hash, accepted_on_l2())

    async with stack.client(RECONCILE_SECRET) as api:
        answer = await api.post(f"{PAYMENTS}/reconcile")
        shown = await poll(
            lambda: api.get(f"{PAYMENTS}/payments/{ref}"),
            lambda read: read.json()["status"] != "pending",
        )

    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert (summary["scanned"], summary["started"], summary["failed"]) == (1, 1, 0)
    assert shown.json()["status"] == "settled", shown.text


async def test_signal_counts_include_paid_run(
    stack: Stack, starknet_node: StarknetNode
) -> None:
    tx_hash = new_tx_hash()
    starknet_node.script(tx_hash, accepted_on_l2())
    async with stack.client() as api:
        challenge = await challenge_for_run(api, STAKE)
        payment = make_payment(
            challenge, replay_key=new_replay_key(), settlement_tx_hash=tx_hash
        )
        paid = await api.post(
            RUNS, json=STAKE, headers=x402_headers(challenge, payment)
        )
        assert paid.status_code == 201, paid.text

        # The API's own signals reach the event log every SIGNAL_FLUSH_SECONDS.
        answer = await poll(
            lambda: api.get(f"{PAYMENTS}/metrics"),
            lambda read: read.json()["totals"]["paywall_paid"] >= 1,
        )

    assert answer.status_code == 200, answer.text
    counts = answer.json()
    assert counts["totals"]["paywall_required"] >= 1
    assert counts["totals"]["settle_settled"] >= 1
    assert counts["windows"].keys() == {"5m", "1h"}
    assert counts["windows"]["5m"]["settle_settled"] >= 1


async def test_prometheus_metrics_count_challenges(stack: Stack) -> None:
    async with stack.anonymous_client() as api:
        issued = await api.post(f"{PAYMENTS}/challenge", json=TERMS)
        assert issued.status_code == 200, issued.text

        answer = await api.get("/metrics")

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    assert "x402_challenge_issued_total" in answer.text


async def test_health_and_readiness_answer_200(stack: Stack) -> None:
    async with stack.anonymous_client() as api:
        health = await api.get("/healthz")
        ready = await api.get("/readyz")

    assert health.status_code == 200, health.text
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "postgres": "ok", "temporal": "ok"}


async def test_openapi_documents_every_route(stack: Stack) -> None:
    routes = [r for r in create_app(stack.settings).routes if isinstance(r, APIRoute)]

    async with stack.anonymous_client() as api:
        docs = await api.get("/docs")
        schema = await api.get("/openapi.json")

    assert docs.status_code == 200, docs.text
    assert schema.status_code == 200, schema.text
    paths = schema.json()["paths"]
    for route in routes:
        for method in route.methods:
            operation = paths[route.path][method.lower()]
            assert operation.get("description"), (method, route.path)


async def test_free_run_completes_without_payment(
    stack: Stack, starkzap_executor: StarkzapExecutor
) -> None:
    async with stack.client() as api:
        answer = await api.post(RUNS, json=SWAP)

    assert answer.status_code == 201, answer.text
    run = answer.json()["run"]
    assert run["status"] == "completed"
    assert run["billable"] is False
    assert run["payment_ref"] is None
    assert starkzap_executor.executions_for(run["run_id"]) == 1
    assert await stack.fetchval("select count(*) from x402_payments") == 0
