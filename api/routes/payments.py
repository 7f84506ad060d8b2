"""Runbook endpoints of Cloak x402: challenge, verify, settle, reconcile, metrics."""

import hmac
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from api import workflows
from api.deps import AdminKey, ServicesDep, rate_limited
from api.errors import ApiError
from api.paywall import CHALLENGE_HEADER, RECEIPT_HEADER, Presentation, issue_challenge
from api.reconcile import reconcile_pending
from api.schemas import (
    ERROR_RESPONSES,
    CancelRequest,
    ChallengeCreate,
    ChallengePublic,
    CheckPublic,
    OperatorAnswer,
    PaymentPublic,
    ReconcileSummary,
    SignalCounts,
)
from metrics import SETTLE_DECISION_SECONDS, VERIFY_SECONDS
from protocol.models import SettleResponse, VerifyDecision
from protocol.signals import Signal
from protocol.verify import ReplayState, VerifyPolicy, verify_payment
from store import events, payments
from store.pool import connection

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/marketplace/payments/x402", tags=["payments"])

WINDOWS = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1)}


@router.post(
    "/challenge",
    response_model=ChallengePublic,
    response_model_exclude_none=True,
    responses=ERROR_RESPONSES,
    dependencies=[Depends(rate_limited("challenge"))],
)
async def create_challenge(
    terms: ChallengeCreate, response: Response, services: ServicesDep
) -> ChallengePublic:
    """Sign a challenge in-process: no Postgres, no Temporal for an unpaid offer."""
    settings = services.settings
    challenge = issue_challenge(
        settings,
        recipient=terms.recipient,
        token=terms.token or settings.x402_default_token,
        min_amount=terms.min_amount or settings.x402_default_min_amount,
        network=terms.network or settings.x402_network,
        context=terms.context,
        tongo_recipient=terms.tongo_recipient,
        ttl_seconds=terms.ttl_seconds,
    )
    services.signals.count(Signal.CHALLENGE_ISSUED)
    response.headers[CHALLENGE_HEADER] = challenge.model_dump_json(exclude_none=True)
    logger.info("challenge issued challenge_id=%s", challenge.challenge_id)
    return ChallengePublic(challenge=challenge)


@router.post(
    "/verify",
    response_model=VerifyDecision,
    responses=ERROR_RESPONSES,
    dependencies=[Depends(rate_limited("verify"))],
)
async def verify(presentation: Presentation, services: ServicesDep) -> VerifyDecision:
    """Verify a payment without recording anything: protocol checks and replay."""
    started = time.perf_counter()
    async with connection(services.pool) as conn:
        row = await payments.get_payment(conn, presentation.payment.replay_key)
    replay = ReplayState.UNSEEN if row is None else ReplayState(row.status.value)
    policy = VerifyPolicy(
        secrets=services.settings.facilitator_secrets,
        legacy_proof_compat=services.settings.x402_legacy_proof_compat,
        now_ms=int(time.time() * 1000),
    )
    decision = verify_payment(
        presentation.challenge, presentation.payment, policy, replay
    )

    VERIFY_SECONDS.observe(time.perf_counter() - started)
    accepted = decision.accepted
    services.signals.count(
        Signal.VERIFY_ACCEPTED if accepted else Signal.VERIFY_REJECTED,
        decision.reason_code,
    )
    logger.info(
        "payment verified payment_ref=%s status=%s reason=%s",
        decision.payment_ref,
        decision.status,
        decision.reason_code,
    )
    return decision


@router.post(
    "/settle",
    response_model=SettleResponse,
    responses=ERROR_RESPONSES,
    dependencies=[Depends(rate_limited("settle"))],
)
async def settle(
    presentation: Presentation, response: Response, services: ServicesDep
) -> SettleResponse:
    """Settle through the payment's workflow; the same payment gets the same answer."""
    started = time.perf_counter()
    answer, _ = await workflows.settle_payment(services, presentation)
    SETTLE_DECISION_SECONDS.observe(time.perf_counter() - started)
    if answer.receipt is not None:
        response.headers[RECEIPT_HEADER] = _compact_receipt(answer.receipt)
    return answer


@router.post(
    "/reconcile",
    response_model=ReconcileSummary,
    responses=ERROR_RESPONSES,
    dependencies=[Depends(rate_limited("reconcile"))],
)
async def reconcile(
    request: Request,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ReconcileSummary:
    """Re-check pending payments now; restart those whose workflow is gone."""
    _require_reconcile_secret(request, services.settings.x402_reconcile_secret)
    return await reconcile_pending(services, limit)


@router.get("/metrics", response_model=SignalCounts, responses=ERROR_RESPONSES)
async def read_signal_counts(services: ServicesDep) -> SignalCounts:
    """The twelve signals from the event log, all time and over recent windows."""
    now = datetime.now(UTC)
    async with connection(services.pool) as conn:
        totals = await events.count_signals(conn)
        windows = {
            name: await events.count_signals(conn, since=now - span)
            for name, span in WINDOWS.items()
        }
    return SignalCounts(totals=totals, windows=windows)


@router.get(
    "/payments/{payment_ref}", response_model=PaymentPublic, responses=ERROR_RESPONSES
)
async def read_payment(payment_ref: str, services: ServicesDep) -> PaymentPublic:
    """A payment's status with its workflow's stage and receipt checks."""
    async with connection(services.pool) as conn:
        row = await payments.get_payment_by_ref(conn, payment_ref)
    if row is None:
        raise ApiError(404, "NOT_FOUND", f"no payment {payment_ref}")

    progress = await workflows.payment_progress(services, payment_ref)
    return PaymentPublic(
        payment_ref=row.payment_ref,
        status=row.status.value,
        reason_code=row.reason_code,
        detail=row.reason_detail,
        tx_hash=row.settlement_tx_hash,
        stage=progress.stage.value if progress else None,
        check_count=progress.check_count if progress else None,
        checks=[CheckPublic.model_validate(c.model_dump()) for c in progress.checks]
        if progress
        else [],
        next_check_at=progress.next_check_at if progress else None,
        receipt=row.receipt,
        created_at=row.created_at,
        settled_at=row.settled_at,
    )


@router.post(
    "/payments/{payment_ref}/retry",
    response_model=OperatorAnswer,
    responses=ERROR_RESPONSES,
)
async def retry_payment(
    payment_ref: str, key: AdminKey, services: ServicesDep
) -> OperatorAnswer:
    """Operator: re-check the receipt now, or re-run a failed execution."""
    delivered = await workflows.signal_payment(services, payment_ref, "retry")
    logger.info("operator retry payment_ref=%s key_id=%s", payment_ref, key.key_id)
    return OperatorAnswer(payment_ref=payment_ref, signal="retry", delivered=delivered)


@router.post(
    "/payments/{payment_ref}/cancel",
    response_model=OperatorAnswer,
    responses=ERROR_RESPONSES,
)
async def cancel_payment(
    payment_ref: str,
    cancel: Annotated[CancelRequest, Body()],
    key: AdminKey,
    services: ServicesDep,
) -> OperatorAnswer:
    """Operator: stop waiting; a pending payment is rejected, its run cancelled."""
    delivered = await workflows.signal_payment(
        services, payment_ref, "cancel", cancel.reason
    )
    logger.info("operator cancel payment_ref=%s key_id=%s", payment_ref, key.key_id)
    return OperatorAnswer(payment_ref=payment_ref, signal="cancel", delivered=delivered)


def _require_reconcile_secret(request: Request, secret: Any) -> None:
    """Bearer or x-x402-reconcile-secret, compared in constant time."""
    if secret is None:
        raise ApiError(
            401, "UNAUTHORIZED", "reconcile is disabled: X402_RECONCILE_SECRET unset"
        )
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    presented = token if scheme.lower() == "bearer" else ""
    presented = presented or request.headers.get("x-x402-reconcile-secret", "")
    expected = secret.get_secret_value()
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise ApiError(401, "UNAUTHORIZED", "the reconcile secret does not match")


def _compact_receipt(receipt: dict[str, Any]) -> str:
    return json.dumps(receipt, separators=(",", ":"), ensure_ascii=False)
