"""Refusals end to end: each reason code and status, in the one error shape."""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.paywall import CHALLENGE_HEADER, PAYMENT_HEADER
from protocol.challenge import build_challenge
from protocol.models import Challenge, PaymentPayload
from tests.api.conftest import SMALL_RATE_LIMIT
from tests.api.stack import (
    PAYMENTS,
    RUNS,
    Stack,
    challenge_for_run,
    new_replay_key,
    new_tx_hash,
    post_in_segments,
    presentation,
    x402_headers,
)
from tests.factories import RECIPIENT, SECRET, make_payment
from tests.harness.starknet_node import StarknetNode, accepted_on_l2

STAKE = {"agent_id": "steward", "action": "stake", "params": {"amount": "100"}}
OTHER_RECIPIENT = "0x" + "ab" * 31
TERMS = {"recipient": RECIPIENT, "minAmount": "100"}


def assert_error(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The answer is ``status`` with ``code`` in the one error shape; its body."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert {"error", "code", "details", "request_id"} <= body.keys()
    assert body["code"] == code, body
    assert body["request_id"] == answer.headers["x-request-id"]
    return body


def payment_for(challenge: Challenge, **fields: Any) -> PaymentPayload:
    """A payment of ``challenge`` with a replay key and a tx of its own."""
    return make_payment(
        challenge,
        replay_key=new_replay_key(),
        settlement_tx_hash=new_tx_hash(),
        **fields,
    )


def expired_challenge(stack: Stack, context: dict[str, Any]) -> Challenge:
    """A challenge the stack could have signed for ``context``, expired a while ago."""
    return build_challenge(
        secret=SECRET,
        network="sepolia",
        token="STRK",
        min_amount="100",
        recipient=RECIPIENT,
        context=context,
        facilitator=str(stack.settings.x402_facilitator_url),
        now=datetime.now(UTC) - timedelta(minutes=10),
        expiry_seconds=60,
    )


async def mint_challenge(api: httpx.AsyncClient, **terms: Any) -> Challenge:
    """A challenge from the public challenge endpoint."""
    answer = await api.post(f"{PAYMENTS}/challenge", json=terms)
    assert answer.status_code == 200, answer.text
    return Challenge.model_validate(answer.json()["challenge"])


async def test_create_run_with_tampered_signature_answers_invalid_payload(
    stack: Stack,
) -> None:
    async with stack.client() as api:
        challenge = await challenge_for_run(api, STAKE)
        tampered = challenge.model_copy(update={"signature": "0" * 64})
        payment = payment_for(tampered)

        answer = await api.post(
            RUNS, json=STAKE, headers=x402_headers(tampered, payment)
        )

    body = assert_error(answer, 402, "INVALID_PAYLOAD")
    assert "signature" in body["error"]
    assert body["details"]["payment_ref"] == payment.payment_ref


async def test_create_run_with_fractional_amount_answers_invalid_payload(
    stack: Stack,
) -> None:
    async with stack.client() as api:
        challenge = await challenge_for_run(api, STAKE)
        payment = payment_for(challenge, amount="100.5")

        answer = await api.post(
            RUNS, json=STAKE, headers=x402_headers(challenge, payment)
        )

    body = assert_error(answer, 402, "INVALID_PAYLOAD")
    assert "amount" in body["error"]


async def test_create_run_with_expired_challenge_answers_expired_payment(
    stack: Stack,
) -> None:
    challenge = expired_challenge(stack, await stack.run_context(STAKE))
    payment = payment_for(challenge)

    async with stack.client() as api:
        answer = await api.post(
            RUNS, json=STAKE, headers=x402_headers(challenge, payment)
        )

    assert_error(answer, 402, "EXPIRED_PAYMENT")


async def test_create_run_with_other_params_answers_context_mismatch(
    stack: Stack,
) -> None:
    other = STAKE | {"params": {"amount": "200"}}
    async with stack.client() as api:
        challenge = await challenge_for_run(api, STAKE)
        payment = payment_for(challenge)

        answer = await api.post(
            RUNS, json=other, headers=x402_headers(challenge, payment)
        )

    assert_error(answer, 409, "CONTEXT_MISMATCH")


@pytest.mark.parametrize(
    ("terms", "problem"),
    [
        ({"minAmount": "1"}, "minAmount"),
        ({"recipient": OTHER_RECIPIENT}, "recipient"),
    ],
    ids=["lower-min-amount", "other-recipient"],
)
async def test_create_run_with_foreign_terms_answers_policy_denied(
    stack: Stack, terms: dict[str, str], problem: str
) -> None:
    context = await stack.run_context(STAKE)
    async with stack.client() as api:
        challenge = await mint_challenge(api, **(TERMS | terms), context=context)
        payment = payment_for(challenge)

        answer = await api.post(
            RUNS, json=STAKE, headers=x402_headers(challenge, payment)
        )

    body = assert_error(answer, 402, "POLICY_DENIED")
    assert problem in body["error"]


async def test_create_run_with_used_challenge_answers_replay_detected(
    stack: Stack, starknet_node: StarknetNode
) -> None:
    async with stack.client() as api:
        challenge = await challenge_for_run(api, STAKE)
        first, second = payment_for(challenge), payment_for(challenge)
        for payment in (first, second):
            tx_hash = json.loads(payment.proof)["settlementTxHash"]
            starknet_node.script(tx_hash, accepted_on_l2())
        paid = await api.post(RUNS, json=STAKE, headers=x402_headers(challenge, first))
        assert paid.status_code == 201, paid.text

        answer = await api.post(
            RUNS, json=STAKE, headers=x402_headers(challenge, second)
        )

    assert_error(answer, 402, "REPLAY_DETECTED")


def tampered_signature(stack: Stack, challenge: Challenge) -> dict[str, Any]:
    tampered = challenge.model_copy(update={"signature": "f" * 64})
    return presentation(tampered, payment_for(tampered))


def fractional_amount(stack: Stack, challenge: Challenge) -> dict[str, Any]:
    return presentation(challenge, payment_for(challenge, amount="1e2"))


def expired(stack: Stack, challenge: Challenge) -> dict[str, Any]:
    old = expired_challenge(stack, {})
    return presentation(old, payment_for(old))


def other_context(stack: Stack, challenge: Challenge) -> dict[str, Any]:
    return presentation(challenge, payment_for(challenge, contextHash="0" * 64))


def amount_below_minimum(stack: Stack, challenge: Challenge) -> dict[str, Any]:
    return presentation(challenge, payment_for(challenge, amount="99"))


def other_token(stack: Stack, challenge: Challenge) -> dict[str, Any]:
    return presentation(challenge, payment_for(challenge, token="USDC"))


@pytest.mark.parametrize(
    ("present", "reason_code"),
    [
        (tampered_signature, "INVALID_PAYLOAD"),
        (fractional_amount, "INVALID_PAYLOAD"),
        (expired, "EXPIRED_PAYMENT"),
        (other_context, "CONTEXT_MISMATCH"),
        (amount_below_minimum, "POLICY_DENIED"),
        (other_token, "POLICY_DENIED"),
    ],
    ids=lambda case: getattr(case, "__name__", case),
)
async def test_verify_rejects_bad_payment_with_reason_code(
    stack: Stack,
    present: Callable[[Stack, Challenge], dict[str, Any]],
    reason_code: str,
) -> None:
    async with stack.anonymous_client() as api:
        challenge = await mint_challenge(api, **TERMS)

        answer = await api.post(f"{PAYMENTS}/verify", json=present(stack, challenge))

    assert answer.status_code == 200, answer.text
    decision = answer.json()
    assert decision["status"] == "rejected"
    assert decision["reasonCode"] == reason_code


async def test_oversized_x402_headers_answer_413(stack: Stack) -> None:
    async with stack.client() as api:
        challenge = await challenge_for_run(api, STAKE)
        payment = payment_for(challenge).model_dump()
        padded = json.dumps(payment | {"padding": "x" * (32 * 1024)})
        headers = {
            CHALLENGE_HEADER: challenge.model_dump_json(exclude_none=True),
            PAYMENT_HEADER: padded,
        }

        answer = await api.post(RUNS, json=STAKE, headers=headers)

    body = assert_error(answer, 413, "HEADERS_TOO_LARGE")
    assert "_x402" in body["error"]


async def test_x402_headers_under_limit_reach_app_in_segments(stack: Stack) -> None:
    async with stack.client() as api:
        challenge = await challenge_for_run(api, STAKE)
    tampered = challenge.model_copy(update={"signature": "0" * 64})
    payment = payment_for(tampered).model_dump()
    headers = {
        "Authorization": f"Bearer {stack.api_key}",
        CHALLENGE_HEADER: tampered.model_dump_json(exclude_none=True),
        PAYMENT_HEADER: json.dumps(payment | {"padding": "x" * (20 * 1024)}),
    }
    assert len(headers[PAYMENT_HEADER]) < stack.settings.x402_max_header_bytes

    status, body = await post_in_segments(
        stack.url, RUNS, headers, json.dumps(STAKE).encode()
    )

    assert status == 402, body
    assert json.loads(body)["code"] == "INVALID_PAYLOAD"


async def test_payment_header_without_challenge_answers_400(stack: Stack) -> None:
    async with stack.client() as api:
        challenge = await challenge_for_run(api, STAKE)
        headers = {PAYMENT_HEADER: payment_for(challenge).model_dump_json()}

        answer = await api.post(RUNS, json=STAKE, headers=headers)

    body = assert_error(answer, 400, "INVALID_PAYLOAD")
    assert CHALLENGE_HEADER in body["error"]


async def test_malformed_json_header_answers_invalid_payload(stack: Stack) -> None:
    async with stack.client() as api:
        challenge = await challenge_for_run(api, STAKE)
        headers = x402_headers(challenge, payment_for(challenge))
        headers[PAYMENT_HEADER] = headers[PAYMENT_HEADER][:-1]

        answer = await api.post(RUNS, json=STAKE, headers=headers)

    body = assert_error(answer, 400, "INVALID_PAYLOAD")
    assert PAYMENT_HEADER in body["error"]


@pytest.mark.parametrize(
    ("order", "field"),
    [
        (STAKE | {"agent_id": "nobody"}, "agent_id"),
        (STAKE | {"action": "swap"}, "action"),
        ({"action": "stake"}, "agent_id"),
    ],
    ids=["unknown-agent", "unsupported-action", "missing-agent"],
)
async def test_create_run_with_bad_order_answers_400_naming_field(
    stack: Stack, order: dict[str, Any], field: str
) -> None:
    async with stack.client() as api:
        answer = await api.post(RUNS, json=order)

    body = assert_error(answer, 400, "INVALID_REQUEST")
    assert field in body["details"]["fields"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-key"}, {"x-api-key": "not-a-key"}],
    ids=["no-key", "wrong-bearer", "wrong-x-api-key"],
)
async def test_runs_without_valid_api_key_answer_401(
    stack: Stack, headers: dict[str, str]
) -> None:
    async with stack.anonymous_client(**headers) as api:
        created = await api.post(RUNS, json=STAKE)
        listed = await api.get(RUNS)

    assert_error(created, 401, "UNAUTHORIZED")
    assert_error(listed, 401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    ("signal", "body"),
    [("retry", None), ("cancel", {"reason": "operator test"})],
)
async def test_operator_signals_need_admin_key(
    stack: Stack, signal: str, body: dict[str, str] | None
) -> None:
    path = f"{PAYMENTS}/payments/pay_{new_replay_key()}/{signal}"

    async with stack.client() as operator, stack.client(stack.admin_key) as admin:
        refused = await operator.post(path, json=body)
        allowed = await admin.post(path, json=body)

    assert_error(refused, 403, "FORBIDDEN")
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["signal"] == signal
    assert allowed.json()["delivered"] is False


async def test_challenges_over_rate_limit_answer_429(
    small_limit_stack: Stack,
) -> None:
    async with small_limit_stack.anonymous_client() as api:
        answers = [
            await api.post(f"{PAYMENTS}/challenge", json=TERMS)
            for _ in range(SMALL_RATE_LIMIT + 1)
        ]

    assert [a.status_code for a in answers[:-1]] == [200] * SMALL_RATE_LIMIT
    body = assert_error(answers[-1], 429, "RATE_LIMITED")
    retry_after = body["details"]["retry_after"]
    assert isinstance(retry_after, int) and retry_after >= 1
    assert answers[-1].headers["Retry-After"] == str(retry_after)


async def test_other_operators_run_is_invisible(stack: Stack) -> None:
    swap = {"agent_id": "free-swapper", "action": "swap", "params": {"pair": "x"}}
    async with stack.client() as owner:
        created = await owner.post(RUNS, json=swap)
        assert created.status_code == 201, created.text
        run_id = created.json()["run"]["run_id"]

    async with stack.client(stack.other_key) as other, stack.client() as owner:
        read = await other.get(f"{RUNS}/{run_id}")
        listed = await other.get(RUNS)
        own_list = await owner.get(RUNS)

    assert_error(read, 404, "NOT_FOUND")
    assert listed.status_code == 200, listed.text
    assert run_id not in [run["run_id"] for run in listed.json()["runs"]]
    assert run_id in [run["run_id"] for run in own_list.json()["runs"]]


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/v1/marketplace/nowhere", 404, "NOT_FOUND"),
        ("GET", f"{PAYMENTS}/settle", 405, "METHOD_NOT_ALLOWED"),
    ],
    ids=["unknown-path", "wrong-method"],
)
async def test_routing_refusals_answer_in_error_shape(
    stack: Stack, method: str, path: str, status: int, code: str
) -> None:
    async with stack.client() as api:
        answer = await api.request(method, path)

    assert_error(answer, status, code)


async def test_malformed_json_body_answers_400_naming_body(stack: Stack) -> None:
    async with stack.client() as api:
        answer = await api.post(
            RUNS, content=b"{not json", headers={"content-type": "application/json"}
        )

    body = assert_error(answer, 400, "INVALID_REQUEST")
    assert body["details"]["fields"] == ["body"]


async def test_forwarded_for_from_untrusted_peer_shares_rate_limit(
    small_limit_stack: Stack,
) -> None:
    async with small_limit_stack.anonymous_client() as api:
        answers = [
            await api.post(
                f"{PAYMENTS}/challenge",
                json=TERMS,
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
            )
            for n in range(SMALL_RATE_LIMIT + 1)
        ]

    assert_error(answers[-1], 429, "RATE_LIMITED")


async def test_rate_limit_of_runs_counts_per_operator_wallet(
    small_limit_stack: Stack,
) -> None:
    async with (
        small_limit_stack.client() as operator,
        small_limit_stack.client(small_limit_stack.other_key) as other,
    ):
        spent = [await operator.post(RUNS, json=STAKE) for _ in range(SMALL_RATE_LIMIT)]
        limited = await operator.post(RUNS, json=STAKE)
        others = await other.post(RUNS, json=STAKE)

    assert [answer.status_code for answer in spent] == [402] * SMALL_RATE_LIMIT
    assert_error(limited, 429, "RATE_LIMITED")
    assert_error(others, 402, "PAYMENT_REQUIRED")


def reused_challenge(challenge: Challenge, node: StarknetNode) -> list[PaymentPayload]:
    """Two payments of one challenge; the second is refused as a replay."""
    payments = [payment_for(challenge), payment_for(challenge)]
    for payment in payments:
        node.script(json.loads(payment.proof)["settlementTxHash"], accepted_on_l2())
    return payments


def no_settlement_tx(challenge: Challenge, node: StarknetNode) -> list[PaymentPayload]:
    """A payment whose proof names no transaction, refused by the workflow."""
    return [
        make_payment(challenge, replay_key=new_replay_key(), settlement_tx_hash=None)
    ]


@pytest.mark.parametrize(
    ("payments_for", "code"),
    [(reused_challenge, "REPLAY_DETECTED"), (no_settlement_tx, "INVALID_PAYLOAD")],
    ids=["reused-challenge", "no-settlement-tx"],
)
async def test_refused_payment_leaves_no_run_waiting_for_payment(
    stack: Stack,
    starknet_node: StarknetNode,
    payments_for: Callable[[Challenge, StarknetNode], list[PaymentPayload]],
    code: str,
) -> None:
    async with stack.client() as api:
        challenge = await challenge_for_run(api, STAKE)
        *paid, refused = payments_for(challenge, starknet_node)
        for payment in paid:
            answer = await api.post(
                RUNS, json=STAKE, headers=x402_headers(challenge, payment)
            )
            assert answer.status_code == 201, answer.text

        answer = await api.post(
            RUNS, json=STAKE, headers=x402_headers(challenge, refused)
        )
        waiting = await api.get(RUNS, params={"status": "pending_payment"})

    assert_error(answer, 402, code)
    assert waiting.json()["runs"] == []
