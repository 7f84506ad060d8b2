"""Requests and answers of the marketplace API, built and read without I/O.

Both clients, the asyncio one and the blocking one, send what this module builds
and read answers through it, so the HTTP contract lives in one place.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from client.errors import (
    ApiError,
    InvalidResponse,
    PaymentRefused,
    RateLimited,
    ServiceUnavailable,
    X402ClientError,
)
from protocol.models import Challenge, PaymentPayload

API_PREFIX = "/api/v1/marketplace"
# Must match: the header and body field names the API reads (DESIGN.md, "Wire
# protocol").
CHALLENGE_HEADER = "x-x402-challenge"
PAYMENT_HEADER = "x-x402-payment"
BODY_FIELD = "_x402"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Must match: X402_MAX_HEADER_BYTES of the API, which answers 413 above it. The
# margin leaves room for the request's other headers.
MAX_HEADER_BYTES = 32 * 1024
HEADER_MARGIN_BYTES = 1024
DEFAULT_HEADER_BUDGET = MAX_HEADER_BYTES - HEADER_MARGIN_BYTES

PAYMENT_REQUIRED = "PAYMENT_REQUIRED"
FINISHED_STATUSES = frozenset({"completed", "failed", "cancelled"})
RETRY_STATUSES = frozenset({429, 503})
MAX_RETRIES = 3
DEFAULT_RETRY_AFTER = 1.0
# A longer wait than this is the caller's decision, so the error is raised instead.
MAX_RETRY_AFTER = 30.0

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Endpoints:
    """The API's URLs under one base URL."""

    base_url: str

    @classmethod
    def under(cls, base_url: str) -> "Endpoints":
        return cls(base_url.rstrip("/") + API_PREFIX)

    def runs(self) -> str:
        return f"{self.base_url}/runs"

    def run(self, run_id: str) -> str:
        return f"{self.base_url}/runs/{quote(run_id, safe='')}"

    def payments(self, step: Literal["challenge", "verify", "settle"]) -> str:
        return f"{self.base_url}/payments/x402/{step}"

    def payment(self, payment_ref: str) -> str:
        return f"{self.base_url}/payments/x402/payments/{quote(payment_ref, safe='')}"


@dataclass(frozen=True)
class PaidRequest:
    """Body and headers of a paid retry, and which of the two carries the payment."""

    body: dict[str, Any]
    headers: dict[str, str]
    carrier: Literal["headers", "body"]


def compact_json(value: Any) -> str:
    """JSON without spaces, non-ASCII escaped so the text is a valid header value."""
    # No signature covers this text, only the values it decodes to, so escaping
    # changes nothing the API checks.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def run_body(
    agent_id: str, action: str, params: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The JSON body of ``POST /runs``."""
    return {"agent_id": agent_id, "action": action, "params": dict(params or {})}


def challenge_request_body(
    recipient: str,
    *,
    token: str | None = None,
    min_amount: str | None = None,
    network: str | None = None,
    context: Mapping[str, Any] | None = None,
    ttl_seconds: int | None = None,
) -> dict[str, Any]:
    """The JSON body of ``POST /payments/x402/challenge``, unset terms left out."""
    terms = {
        "recipient": recipient,
        "token": token,
        "minAmount": min_amount,
        "network": network,
        "context": None if context is None else dict(context),
        "ttlSeconds": ttl_seconds,
    }
    return {name: value for name, value in terms.items() if value is not None}


def payment_pair(challenge: Challenge, payment: PaymentPayload) -> dict[str, Any]:
    """``{"challenge", "payment"}`` as verify, settle and the ``_x402`` field take."""
    return {"challenge": challenge.to_wire(), "payment": payment.model_dump()}


def paid_run_request(
    body: Mapping[str, Any],
    challenge: Challenge,
    payment: PaymentPayload,
    *,
    idempotency_key: str | None = None,
    header_budget: int = DEFAULT_HEADER_BUDGET,
) -> PaidRequest:
    """The paid retry of ``body``: payment in headers, or in the body when too large.

    Only this request carries the caller's Idempotency-Key. The unpaid request
    before it differs in headers or body, and the API would answer a reused key
    with 409 IDEMPOTENCY_KEY_REUSED or replay the 402.
    """
    headers = {
        CHALLENGE_HEADER: compact_json(challenge.to_wire()),
        PAYMENT_HEADER: compact_json(payment.model_dump()),
    }
    carrier: Literal["headers", "body"] = "headers"
    paid_body = dict(body)
    if sum(len(value.encode()) for value in headers.values()) > header_budget:
        headers = {}
        carrier = "body"
        paid_body[BODY_FIELD] = payment_pair(challenge, payment)

    if idempotency_key is not None:
        headers[IDEMPOTENCY_HEADER] = idempotency_key
    return PaidRequest(body=paid_body, headers=headers, carrier=carrier)


def read_json(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object; InvalidResponse when it is anything else."""
    try:
        body = response.json()
    except ValueError as error:
        raise InvalidResponse(
            f"{response.status_code} answer is not JSON", status=response.status_code
        ) from error
    if not isinstance(body, dict):
        raise InvalidResponse(
            f"{response.status_code} answer is not a JSON object",
            status=response.status_code,
        )
    return body


def read_answer(
    response: httpx.Response, *, payment_ref: str | None = None
) -> dict[str, Any]:
    """The JSON object of a success answer; the mapped error of any other."""
    if response.is_success:
        return read_json(response)
    raise error_for_response(response, payment_ref=payment_ref)


def is_payment_required(response: httpx.Response) -> bool:
    """Whether this is the 402 that offers a challenge (not a refused payment)."""
    return response.status_code == 402 and _error_code(response) == PAYMENT_REQUIRED


def read_challenge(response: httpx.Response) -> Challenge:
    """The challenge of a 402 answer: the body's, else the ``x-x402-challenge``."""
    wire = read_json(response).get("challenge")
    if wire is None and CHALLENGE_HEADER in response.headers:
        try:
            wire = json.loads(response.headers[CHALLENGE_HEADER])
        except ValueError as error:
            raise InvalidResponse(
                f"{CHALLENGE_HEADER} is not JSON", status=response.status_code
            ) from error
    return read_model(Challenge, wire, response)


def read_model(model: type[M], data: Any, response: httpx.Response) -> M:
    """``data`` read as a wire model; InvalidResponse when it does not fit."""
    try:
        return model.model_validate(data, strict=False)
    except ValidationError as error:
        raise InvalidResponse(
            f"{response.status_code} answer is not a {model.__name__}",
            status=response.status_code,
        ) from error


def read_run(response: httpx.Response, body: Mapping[str, Any]) -> dict[str, Any]:
    """The ``run`` object of an answer, checked to name its id and status."""
    run = body.get("run")
    if not isinstance(run, dict) or not all(
        isinstance(run.get(name), str) for name in ("run_id", "status")
    ):
        raise InvalidResponse(
            f"{response.status_code} answer has no run", status=response.status_code
        )
    return run


def is_finished(run: Mapping[str, Any]) -> bool:
    """Whether the run reached completed, failed or cancelled."""
    return run.get("status") in FINISHED_STATUSES


def error_for_response(
    response: httpx.Response, *, payment_ref: str | None = None
) -> X402ClientError:
    """The exception an error answer stands for, read from its status and body."""
    status = response.status_code
    body = _error_body(response)
    code = body.get("code") if isinstance(body.get("code"), str) else None
    message = body.get("error")
    if not isinstance(message, str) or not message:
        message = response.reason_phrase or f"HTTP {status}"
    details = body.get("details") if isinstance(body.get("details"), dict) else {}
    request_id = body.get("request_id")
    request_id = request_id if isinstance(request_id, str) else None

    if status == 402:
        ref = payment_ref or details.get("paymentRef") or details.get("payment_ref")
        return PaymentRefused(
            code,
            message,
            payment_ref=ref if isinstance(ref, str) else None,
            details=details,
            request_id=request_id,
        )
    if status in (429, 503):
        error_class = RateLimited if status == 429 else ServiceUnavailable
        return error_class(
            status,
            code,
            message,
            retry_after=retry_after(response, details),
            details=details,
            request_id=request_id,
        )
    return ApiError(status, code, message, details=details, request_id=request_id)


def retry_after(
    response: httpx.Response, details: Mapping[str, Any] | None = None
) -> float | None:
    """Seconds to wait: ``details.retry_after``, else a numeric Retry-After header."""
    if details is None:
        details = _error_body(response).get("details")
        details = details if isinstance(details, dict) else {}
    value = details.get("retry_after")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(float(value), 0.0)

    # An HTTP-date Retry-After is not read: the API sends seconds.
    header = response.headers.get("Retry-After", "").strip()
    return float(header) if header.isdigit() else None


def retry_delay(response: httpx.Response, attempt: int) -> float | None:
    """Seconds before retrying a GET after ``attempt`` retries, or None to stop."""
    if response.status_code not in RETRY_STATUSES or attempt >= MAX_RETRIES:
        return None
    delay = retry_after(response)
    if delay is None:
        return DEFAULT_RETRY_AFTER
    return delay if delay <= MAX_RETRY_AFTER else None


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error_code(response: httpx.Response) -> str | None:
    code = _error_body(response).get("code")
    return code if isinstance(code, str) else None
