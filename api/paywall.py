"""The paywall of billable runs: challenges bound to a run, and paid retries."""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, ValidationError

from api.errors import ApiError
from protocol import jsjson
from protocol.amounts import AmountSyntaxError, parse_amount
from protocol.challenge import build_challenge
from protocol.hashing import context_hash
from protocol.models import Challenge, PaymentPayload, ReasonCode
from settings import Settings
from store.records import AgentRecord

# Must match: the header names of the Cloak x402 reference and the client.
CHALLENGE_HEADER = "x-x402-challenge"
PAYMENT_HEADER = "x-x402-payment"
RECEIPT_HEADER = "x-x402-receipt"
RUNS_PATH = "/api/v1/marketplace/runs"


class Presentation(BaseModel):
    """A payment as presented: the challenge it answers and the payload."""

    model_config = ConfigDict(frozen=True)

    challenge: Challenge
    payment: PaymentPayload


def run_context(
    agent: AgentRecord, action: str, params: dict[str, Any], operator_wallet: str
) -> dict[str, Any]:
    """What a run's challenge is bound to: the request, the agent, the wallets."""
    params_digest = hashlib.sha256(jsjson.to_utf8(jsjson.stringify(params)))
    return {
        "method": "POST",
        "path": RUNS_PATH,
        "agent": agent.agent_id,
        "action": action,
        "operatorWallet": operator_wallet.lower(),
        "serviceWallet": agent.service_wallet.lower(),
        "paramsDigest": params_digest.hexdigest(),
    }


def issue_challenge(
    settings: Settings,
    *,
    recipient: str,
    token: str,
    min_amount: str,
    network: str,
    context: dict[str, Any],
    tongo_recipient: str | None = None,
    ttl_seconds: int | None = None,
) -> Challenge:
    """A challenge signed with the current facilitator secret."""
    return build_challenge(
        secret=settings.x402_facilitator_secret.get_secret_value(),
        network=network,
        token=token,
        min_amount=min_amount,
        recipient=recipient,
        context=context,
        facilitator=str(settings.x402_facilitator_url),
        now=datetime.now(UTC),
        expiry_seconds=ttl_seconds or settings.x402_payment_expiry_seconds,
        tongo_recipient=tongo_recipient,
    )


def payment_required(challenge: Challenge) -> ApiError:
    """The one 402 a billable run gets before it is paid."""
    wire = challenge.to_wire()
    return ApiError(
        402,
        "PAYMENT_REQUIRED",
        "this run must be paid: pay the challenge and retry with the payment",
        headers={CHALLENGE_HEADER: _compact(wire)},
        extra={"challenge": wire},
    )


def payment_refused(
    reason: ReasonCode | str, detail: str, payment_ref: str
) -> ApiError:
    """402 with the protocol's reason code: this payment cannot pay for the run."""
    return ApiError(
        402,
        str(reason),
        detail or "the payment was refused",
        details={"payment_ref": payment_ref},
    )


def read_presentation(
    request: Request, body_x402: Any, max_header_bytes: int
) -> Presentation | None:
    """The challenge and payment from the x402 headers or the body's ``_x402``."""
    challenge_text = request.headers.get(CHALLENGE_HEADER)
    payment_text = request.headers.get(PAYMENT_HEADER)
    size = len((challenge_text or "").encode()) + len((payment_text or "").encode())
    if size > max_header_bytes:
        raise ApiError(
            413,
            "HEADERS_TOO_LARGE",
            f"x402 headers are {size} bytes, over {max_header_bytes}; "
            "send them as the body field _x402 instead",
        )

    if payment_text is not None:
        if challenge_text is None:
            raise ApiError(
                400, "INVALID_PAYLOAD", f"{PAYMENT_HEADER} needs {CHALLENGE_HEADER}"
            )
        raw = {
            "challenge": _parse_header(CHALLENGE_HEADER, challenge_text),
            "payment": _parse_header(PAYMENT_HEADER, payment_text),
        }
    elif body_x402 is not None:
        raw = body_x402
    else:
        return None
    return parse_presentation(raw)


def parse_presentation(raw: Any) -> Presentation:
    """A presentation, or 400 INVALID_PAYLOAD naming the first bad field."""
    if isinstance(raw, dict) and "payment" in raw and "challenge" not in raw:
        raise ApiError(400, "INVALID_PAYLOAD", "a payment needs its challenge")
    try:
        return Presentation.model_validate(raw)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ApiError(
            400,
            "INVALID_PAYLOAD",
            f"{field or 'x402'}: {first['msg']}",
            details={"field": field},
        ) from None


def check_bound_terms(
    challenge: Challenge, agent: AgentRecord, context: dict[str, Any]
) -> None:
    """A signature only proves we issued it: the terms must be this run's own."""
    if challenge.context_hash != context_hash(context):
        raise ApiError(
            409,
            str(ReasonCode.CONTEXT_MISMATCH),
            "the challenge was issued for another request (agent, action, "
            "params or wallets differ); ask for a new challenge",
        )

    problems = []
    if not _same_address(challenge.recipient, agent.service_wallet):
        problems.append("recipient is not the agent's service wallet")
    if challenge.token != agent.price_token:
        problems.append(f"token is not {agent.price_token}")
    if challenge.network != agent.network:
        problems.append(f"network is not {agent.network}")
    try:
        if parse_amount(challenge.min_amount) < agent.price_amount:
            problems.append(f"minAmount is below the price {agent.price_amount}")
    except AmountSyntaxError:
        problems.append("minAmount is not an integer")
    if problems:
        raise ApiError(
            402,
            str(ReasonCode.POLICY_DENIED),
            "the challenge's terms do not pay for this run: " + "; ".join(problems),
        )


def _parse_header(name: str, text: str) -> Any:
    try:
        return jsjson.parse(text)
    except (ValueError, json.JSONDecodeError) as error:
        raise ApiError(
            400, "INVALID_PAYLOAD", f"{name} is not valid JSON: {error}"
        ) from None


def _same_address(left: str, right: str) -> bool:
    try:
        return int(left, 16) == int(right, 16)
    except ValueError:
        return left.lower() == right.lower()


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
