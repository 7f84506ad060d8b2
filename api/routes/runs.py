"""Paid agent runs: the paywall, the durable Idempotency-Key, and run reads."""

import asyncio
import hashlib
import json
import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from api import workflows
from api.deps import CurrentKey, ServicesDep, rate_limited
from api.errors import ApiError, error_body
from api.paywall import (
    CHALLENGE_HEADER,
    PAYMENT_HEADER,
    Presentation,
    check_bound_terms,
    issue_challenge,
    payment_refused,
    payment_required,
    read_presentation,
    run_context,
)
from api.schemas import ERROR_RESPONSES, RunAnswer, RunCreate, RunList, RunPublic
from api.services import Services
from protocol.signals import Signal
from protocol.verify import ReplayState, VerifyPolicy, verify_payment
from store import agents, idempotency, payments, runs
from store.errors import DuplicateRun
from store.pool import connection
from store.records import (
    AgentRecord,
    ApiKeyRecord,
    NewRun,
    ReservationOutcome,
    RunRecord,
    RunStatus,
)

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/marketplace/runs", tags=["runs"])

FINISHED = {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED}
POLL_SECONDS = 0.2
REPLAY_HEADER = "x-idempotent-replay"


@router.post(
    "",
    status_code=201,
    response_model=RunAnswer,
    responses={
        **ERROR_RESPONSES,
        202: {"model": RunAnswer, "description": "Accepted; the run is not done"},
        402: {"description": "Payment required (with a challenge) or refused"},
        409: {"description": "Context mismatch or Idempotency-Key conflict"},
        413: {"description": "x402 headers too large"},
    },
)
async def create_run(
    request: Request,
    order: RunCreate,
    key: CurrentKey,
    services: ServicesDep,
    _: Annotated[None, Depends(rate_limited("runs"))],
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", max_length=255)
    ] = None,
) -> JSONResponse:
    """Create a run: 402 until paid, then 201 when finished or 202 while pending."""
    if idempotency_key is None:
        status, body = await _answer_run(request, order, key, services)
        return JSONResponse(body, status_code=status)

    # The key is reserved before any work, so a retry can never start twice.
    actor = f"wallet:{key.wallet}"
    fingerprint = _fingerprint(request, order)
    async with connection(services.pool) as conn:
        reservation = await idempotency.reserve_idempotency_key(
            conn, actor, idempotency_key, fingerprint
        )
    if reservation.outcome is ReservationOutcome.REPLAY:
        record = reservation.record
        return JSONResponse(
            record.response_body,
            status_code=record.response_status or 200,
            headers={REPLAY_HEADER: "true"},
        )
    if reservation.outcome is not ReservationOutcome.NEW:
        code = (
            "IDEMPOTENCY_IN_FLIGHT"
            if reservation.outcome is ReservationOutcome.IN_FLIGHT
            else "IDEMPOTENCY_KEY_REUSED"
        )
        message = (
            "the first request with this Idempotency-Key is still running"
            if code == "IDEMPOTENCY_IN_FLIGHT"
            else "this Idempotency-Key was used with a different request"
        )
        raise ApiError(409, code, message)

    try:
        status, body = await _answer_run(request, order, key, services)
    except ApiError as error:
        # A 402 challenge expires and a 5xx may pass: neither is worth replaying.
        if error.status >= 500 or error.code == "PAYMENT_REQUIRED":
            await _release(services, actor, idempotency_key)
            raise
        status, body = error.status, error_body(request, error)
    except BaseException:
        await _release(services, actor, idempotency_key)
        raise

    async with connection(services.pool) as conn:
        await idempotency.complete_idempotency_key(
            conn,
            actor,
            idempotency_key,
            status=status,
            body=body,
            run_id=(body.get("run") or {}).get("run_id"),
        )
    return JSONResponse(body, status_code=status)


@router.get("", response_model=RunList, responses=ERROR_RESPONSES)
async def read_runs(
    key: CurrentKey,
    services: ServicesDep,
    status: RunStatus | None = None,
    agent_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    before: str | None = None,
) -> RunList:
    """The caller's own runs, newest first; pass ``next_before`` for more."""
    async with connection(services.pool) as conn:
        page = await runs.list_runs(
            conn,
            operator_wallet=key.wallet,
            status=status,
            agent_id=agent_id,
            limit=limit,
            before=before,
        )
    return RunList(
        runs=[RunPublic.of(run) for run in page.runs], next_before=page.next_before
    )


@router.get("/{run_id}", response_model=RunAnswer, responses=ERROR_RESPONSES)
async def read_run(run_id: str, key: CurrentKey, services: ServicesDep) -> RunAnswer:
    """One of the caller's runs; another operator's run does not exist here."""
    async with connection(services.pool) as conn:
        run = await runs.get_run(conn, run_id)
    if run is None or run.operator_wallet != key.wallet:
        raise ApiError(404, "NOT_FOUND", f"no run {run_id}")
    return RunAnswer(run=RunPublic.of(run))


async def _answer_run(
    request: Request, order: RunCreate, key: ApiKeyRecord, services: Services
) -> tuple[int, dict[str, Any]]:
    """Status and body for a run request; refusals leave as ApiError."""
    agent = await _require_agent(services, order)
    if agent.price_amount == 0:
        return await _run_free(order, key, services)

    context = run_context(agent, order.action, order.params, key.wallet)
    presentation = read_presentation(
        request, order.x402, services.settings.x402_max_header_bytes
    )
    if presentation is None:
        services.signals.count(Signal.PAYWALL_REQUIRED)
        raise payment_required(_run_challenge(services, agent, context))

    check_bound_terms(presentation.challenge, agent, context)
    await _verify_first(services, presentation)
    return await _run_paid(presentation, order, key, services)


async def _run_paid(
    presentation: Presentation,
    order: RunCreate,
    key: ApiKeyRecord,
    services: Services,
) -> tuple[int, dict[str, Any]]:
    """Create the payment's run (once), then pay_and_run through its workflow."""
    payment_ref = presentation.payment.payment_ref
    run = await _create_or_find_run(
        services,
        NewRun(
            run_id=run_id_for(payment_ref),
            agent_id=order.agent_id,
            operator_wallet=key.wallet,
            action=order.action,
            params=order.params,
            billable=True,
        ),
    )
    answer, _ = await workflows.settle_payment(
        services, presentation, workflows.order_of(run)
    )
    if answer.status in ("failed", "rejected"):
        raise payment_refused(
            answer.reason_code or "REJECTED", answer.detail, payment_ref
        )

    services.signals.count(Signal.PAYWALL_PAID)
    run = await _wait_for_run(services, run.run_id)
    body = RunAnswer(run=RunPublic.of(run)).model_dump(mode="json")
    if run.status in FINISHED:
        return 201, body
    body["payment"] = answer.model_dump(mode="json")
    return 202, body


async def _run_free(
    order: RunCreate, key: ApiKeyRecord, services: Services
) -> tuple[int, dict[str, Any]]:
    """A run the agent does not charge for: its own workflow, execution only."""
    async with connection(services.pool) as conn:
        run = await runs.create_run(
            conn,
            NewRun(
                agent_id=order.agent_id,
                operator_wallet=key.wallet,
                action=order.action,
                params=order.params,
                billable=False,
            ),
        )
    await workflows.start_free_run(services, workflows.order_of(run))
    run = await _wait_for_run(services, run.run_id)
    status = 201 if run.status in FINISHED else 202
    return status, RunAnswer(run=RunPublic.of(run)).model_dump(mode="json")


def run_id_for(payment_ref: str) -> str:
    """The run a payment pays for: derived, so a repeated paid request finds it."""
    return "run_" + hashlib.sha256(payment_ref.encode()).hexdigest()[:32]


async def _require_agent(services: Services, order: RunCreate) -> AgentRecord:
    async with connection(services.pool) as conn:
        agent = await agents.get_agent(conn, order.agent_id)
    if agent is None:
        raise ApiError(
            400,
            "INVALID_REQUEST",
            f"agent_id: no agent {order.agent_id!r}",
            details={"fields": ["agent_id"]},
        )
    if not agents.supports_action(agent.agent_type, order.action):
        supported = ", ".join(agents.SUPPORTED_ACTIONS[agent.agent_type])
        raise ApiError(
            400,
            "INVALID_REQUEST",
            f"action: {agent.agent_type} agents do not {order.action!r} "
            f"(supported: {supported})",
            details={"fields": ["action"]},
        )
    return agent


def _run_challenge(services: Services, agent: AgentRecord, context: dict) -> Any:
    return issue_challenge(
        services.settings,
        recipient=agent.service_wallet,
        token=agent.price_token,
        min_amount=str(agent.price_amount),
        network=agent.network,
        context=context,
        tongo_recipient=agent.tongo_recipient,
    )


async def _verify_first(services: Services, presentation: Presentation) -> None:
    """Refuse a bad payment before any row exists; the workflow checks again."""
    async with connection(services.pool) as conn:
        row = await payments.get_payment(conn, presentation.payment.replay_key)
    if row is not None:
        return  # a payment seen before answers from its workflow
    decision = verify_payment(
        presentation.challenge,
        presentation.payment,
        VerifyPolicy(
            secrets=services.settings.facilitator_secrets,
            legacy_proof_compat=services.settings.x402_legacy_proof_compat,
            now_ms=int(time.time() * 1000),
        ),
        ReplayState.UNSEEN,
    )
    if not decision.accepted:
        raise payment_refused(
            decision.reason_code or "INVALID_PAYLOAD",
            decision.detail,
            decision.payment_ref,
        )


async def _create_or_find_run(services: Services, new: NewRun) -> RunRecord:
    async with connection(services.pool) as conn:
        try:
            return await runs.create_run(conn, new)
        except DuplicateRun:
            existing = await runs.get_run(conn, new.run_id)
    if existing is None or (
        existing.operator_wallet,
        existing.agent_id,
        existing.action,
        existing.params,
    ) != (new.operator_wallet, new.agent_id, new.action, new.params):
        raise ApiError(
            402,
            "REPLAY_DETECTED",
            "this payment already pays for another run",
        )
    return existing


async def _wait_for_run(services: Services, run_id: str) -> RunRecord:
    """The run once finished, or as it stands after X402_RUN_WAIT_SECONDS."""
    deadline = time.monotonic() + services.settings.x402_run_wait_seconds
    while True:
        async with connection(services.pool) as conn:
            run = await runs.get_run(conn, run_id)
        assert run is not None  # created by this request
        if run.status in FINISHED or time.monotonic() >= deadline:
            return run
        await asyncio.sleep(POLL_SECONDS)


async def _release(services: Services, actor: str, key: str) -> None:
    async with connection(services.pool) as conn:
        await idempotency.release_idempotency_key(conn, actor, key)


def _fingerprint(request: Request, order: RunCreate) -> str:
    """The request an Idempotency-Key stands for: body and x402 headers."""
    material = {
        "body": order.model_dump(mode="json", by_alias=True),
        "challenge": request.headers.get(CHALLENGE_HEADER),
        "payment": request.headers.get(PAYMENT_HEADER),
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
