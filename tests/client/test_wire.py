"""Requests are built and answers read as the marketplace API's contract says."""

import json
from typing import Any

import httpx
import pytest

from client.errors import (
    ApiError,
    InvalidResponse,
    PaymentRefused,
    RateLimited,
    ServiceUnavailable,
)
from client.proof import Payment, build_payment
from client.wire import (
    BODY_FIELD,
    CHALLENGE_HEADER,
    DEFAULT_HEADER_BUDGET,
    MAX_HEADER_BYTES,
    MAX_RETRIES,
    PAYMENT_HEADER,
    Endpoints,
    challenge_request_body,
    error_for_response,
    is_finished,
    is_payment_required,
    paid_run_request,
    payment_pair,
    read_answer,
    read_challenge,
    read_run,
    retry_delay,
    run_body,
)
from protocol.models import Challenge, PaymentPayload
from tests.factories import PAYER_TONGO, TX_HASH, make_challenge

BODY = {"agent_id": "agent-1", "action": "summarize", "params": {"n": 3}}


def make_pair(**challenge_terms: Any) -> tuple[Challenge, PaymentPayload]:
    challenge = make_challenge(**challenge_terms)
    paid = Payment(PAYER_TONGO, challenge.min_amount, TX_HASH)
    return challenge, build_payment(challenge, paid, replay_key="rk_wire-1")


def error_answer(
    status: int,
    code: str | None,
    message: str = "refused",
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body = {
        "error": message,
        "code": code,
        "details": details or {},
        "request_id": "req-1",
    }
    return httpx.Response(status, json=body, headers=headers)


def test_endpoints_join_base_url_and_quote_ids() -> None:
    endpoints = Endpoints.under("http://api.test:8000/")

    assert endpoints.runs() == "http://api.test:8000/api/v1/marketplace/runs"
    assert endpoints.run("run/1").endswith("/api/v1/marketplace/runs/run%2F1")
    assert endpoints.payments("settle").endswith("/marketplace/payments/x402/settle")
    assert endpoints.payment("pay_rk-1").endswith("/payments/x402/payments/pay_rk-1")


def test_run_body_sends_empty_params_when_none_given() -> None:
    assert run_body("agent-1", "summarize", None) == {
        "agent_id": "agent-1",
        "action": "summarize",
        "params": {},
    }


def test_challenge_request_body_leaves_unset_terms_out() -> None:
    body = challenge_request_body("0xabc", min_amount="5", ttl_seconds=60)

    assert body == {"recipient": "0xabc", "minAmount": "5", "ttlSeconds": 60}


def test_small_payment_travels_in_headers_and_body_stays_unchanged() -> None:
    challenge, payment = make_pair()

    request = paid_run_request(BODY, challenge, payment)

    assert request.carrier == "headers"
    assert request.body == BODY
    assert json.loads(request.headers[CHALLENGE_HEADER]) == challenge.to_wire()
    assert json.loads(request.headers[PAYMENT_HEADER]) == payment.model_dump()
    compact = json.dumps(payment.model_dump(), separators=(",", ":"))
    assert request.headers[PAYMENT_HEADER] == compact


def test_payment_over_header_budget_travels_in_body_field() -> None:
    challenge, payment = make_pair()

    request = paid_run_request(BODY, challenge, payment, header_budget=200)

    assert request.carrier == "body"
    assert CHALLENGE_HEADER not in request.headers
    assert PAYMENT_HEADER not in request.headers
    assert request.body == BODY | {BODY_FIELD: payment_pair(challenge, payment)}


def test_header_budget_is_compared_with_both_headers_together() -> None:
    challenge, payment = make_pair()
    size = sum(
        len(value)
        for value in paid_run_request(BODY, challenge, payment).headers.values()
    )

    at_budget = paid_run_request(BODY, challenge, payment, header_budget=size)
    over_budget = paid_run_request(BODY, challenge, payment, header_budget=size - 1)

    assert at_budget.carrier == "headers"
    assert over_budget.carrier == "body"


def test_large_challenge_goes_to_body_under_default_budget() -> None:
    challenge, payment = make_pair(facilitator="http://f.test/" + "x" * 40_000)

    request = paid_run_request(BODY, challenge, payment)

    assert DEFAULT_HEADER_BUDGET < MAX_HEADER_BYTES
    assert request.carrier == "body"


def test_non_ascii_terms_are_escaped_in_headers() -> None:
    challenge, payment = make_pair(facilitator="http://facilitateur.test/é")

    request = paid_run_request(BODY, challenge, payment)

    assert request.headers[CHALLENGE_HEADER].isascii()
    assert json.loads(request.headers[CHALLENGE_HEADER]) == challenge.to_wire()


def test_idempotency_key_goes_on_the_paid_request_in_either_carrier() -> None:
    challenge, payment = make_pair()

    in_headers = paid_run_request(BODY, challenge, payment, idempotency_key="k-1")
    in_body = paid_run_request(
        BODY, challenge, payment, idempotency_key="k-1", header_budget=0
    )
    unkeyed = paid_run_request(BODY, challenge, payment)

    assert in_headers.headers["Idempotency-Key"] == "k-1"
    assert in_body.headers == {"Idempotency-Key": "k-1"}
    assert "Idempotency-Key" not in unkeyed.headers


def test_payment_required_402_offers_the_body_challenge() -> None:
    challenge = make_challenge()
    body = {"error": "pay", "code": "PAYMENT_REQUIRED", "details": {}}
    response = httpx.Response(402, json=body | {"challenge": challenge.to_wire()})

    assert is_payment_required(response)
    assert read_challenge(response) == challenge


def test_challenge_is_read_from_header_when_body_has_none() -> None:
    challenge = make_challenge()
    header = json.dumps(challenge.to_wire())
    response = httpx.Response(
        402,
        json={"error": "pay", "code": "PAYMENT_REQUIRED"},
        headers={CHALLENGE_HEADER: header},
    )

    assert read_challenge(response) == challenge


def test_402_without_a_challenge_is_an_invalid_response() -> None:
    response = error_answer(402, "PAYMENT_REQUIRED")

    with pytest.raises(InvalidResponse):
        read_challenge(response)


@pytest.mark.parametrize(
    "code",
    [
        "POLICY_DENIED",
        "INVALID_PAYLOAD",
        "EXPIRED_PAYMENT",
        "REPLAY_DETECTED",
        "SETTLEMENT_FAILED",
    ],
)
def test_402_with_reason_code_is_payment_refused(code: str) -> None:
    response = error_answer(402, code, "payment.amount is below minAmount")

    error = error_for_response(response, payment_ref="pay_rk-1")

    assert not is_payment_required(response)
    assert isinstance(error, PaymentRefused)
    assert error.code == code
    assert error.detail == "payment.amount is below minAmount"
    assert error.payment_ref == "pay_rk-1"
    assert error.request_id == "req-1"


def test_refused_payment_ref_falls_back_to_the_answer_details() -> None:
    response = error_answer(402, "REPLAY_DETECTED", details={"paymentRef": "pay_x"})

    error = error_for_response(response)

    assert isinstance(error, PaymentRefused)
    assert error.payment_ref == "pay_x"


def test_429_is_rate_limited_with_retry_after_from_details() -> None:
    response = error_answer(
        429, "RATE_LIMITED", details={"retry_after": 7}, headers={"Retry-After": "9"}
    )

    error = error_for_response(response)

    assert isinstance(error, RateLimited) and isinstance(error, ApiError)
    assert error.retry_after == 7.0
    assert (error.status, error.code, error.details) == (
        429,
        "RATE_LIMITED",
        {"retry_after": 7},
    )


def test_503_reads_retry_after_header_when_details_lack_it() -> None:
    response = error_answer(503, "UNAVAILABLE", headers={"Retry-After": "4"})

    error = error_for_response(response)

    assert isinstance(error, ServiceUnavailable)
    assert error.retry_after == 4.0


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "INVALID_REQUEST"),
        (401, "UNAUTHORIZED"),
        (403, "FORBIDDEN"),
        (404, "NOT_FOUND"),
        (409, "IDEMPOTENCY_KEY_REUSED"),
        (409, "IDEMPOTENCY_IN_FLIGHT"),
        (409, "CONTEXT_MISMATCH"),
        (413, "PAYLOAD_TOO_LARGE"),
    ],
)
def test_other_error_answers_are_api_errors_with_their_code(
    status: int, code: str
) -> None:
    response = error_answer(status, code, "no such thing")

    error = error_for_response(response)

    assert type(error) is ApiError
    assert (error.status, error.code, error.message) == (status, code, "no such thing")
    assert error.request_id == "req-1"


def test_error_answer_that_is_not_json_keeps_its_status() -> None:
    response = httpx.Response(502, text="<html>bad gateway</html>")

    error = error_for_response(response)

    assert isinstance(error, ApiError)
    assert (error.status, error.code, error.message) == (502, None, "Bad Gateway")


def test_read_answer_raises_mapped_error_for_error_status() -> None:
    with pytest.raises(PaymentRefused):
        read_answer(error_answer(402, "POLICY_DENIED"))


def test_read_answer_refuses_a_success_that_is_not_a_json_object() -> None:
    with pytest.raises(InvalidResponse):
        read_answer(httpx.Response(200, json=["not", "an", "object"]))


def test_read_run_requires_run_id_and_status() -> None:
    response = httpx.Response(201, json={"run": {"run_id": "run_1"}})

    with pytest.raises(InvalidResponse):
        read_run(response, response.json())


@pytest.mark.parametrize(
    ("status", "finished"),
    [
        ("completed", True),
        ("failed", True),
        ("cancelled", True),
        ("pending_payment", False),
        ("queued", False),
        ("running", False),
    ],
)
def test_run_is_finished_only_in_a_final_status(status: str, finished: bool) -> None:
    assert is_finished({"run_id": "run_1", "status": status}) is finished


def test_retry_delay_honours_retry_after_for_429_and_503() -> None:
    limited = error_answer(429, "RATE_LIMITED", details={"retry_after": 2})
    unavailable = error_answer(503, "UNAVAILABLE", headers={"Retry-After": "3"})

    assert retry_delay(limited, 0) == 2.0
    assert retry_delay(unavailable, 0) == 3.0


def test_retry_delay_stops_after_the_bounded_number_of_retries() -> None:
    limited = error_answer(429, "RATE_LIMITED", details={"retry_after": 1})

    assert retry_delay(limited, MAX_RETRIES - 1) == 1.0
    assert retry_delay(limited, MAX_RETRIES) is None


def test_retry_delay_gives_up_on_waits_longer_than_its_cap() -> None:
    limited = error_answer(429, "RATE_LIMITED", details={"retry_after": 3600})

    assert retry_delay(limited, 0) is None


@pytest.mark.parametrize("status", [200, 400, 404, 409, 500, 502])
def test_other_statuses_are_not_retried(status: int) -> None:
    assert retry_delay(error_answer(status, "ANY"), 0) is None
