"""Ledger activities: the payment's facts in Postgres, one transaction per change."""

import asyncpg
from temporalio import activity

import metrics
from protocol.amounts import parse_amount
from protocol.models import ReasonCode
from protocol.signals import Signal
from store import events, payments, runs
from store.errors import ConflictError
from store.pool import connection, transaction
from store.records import PaymentClaim, PaymentRecord, RunStatus
from workflows.models import (
    ClaimInput,
    ClaimResult,
    PaymentTransition,
    ReplayCheckInput,
    RunTransition,
    SignalRecord,
)

_SIGNALS = frozenset(Signal)
_REASONS = frozenset(ReasonCode)


class LedgerActivities:
    """Writes of the payment workflow, each keyed by the replay key or the run id.

    Every write is idempotent: claiming, settling or rejecting the same payment
    again returns what the first call recorded, so any retry is safe. Conflicts
    with other payments are answers, never retried; a lost database raises
    StoreUnavailable, which the activity retry policy retries.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name="read_replay")
    async def read_replay(self, check: ReplayCheckInput) -> ClaimResult:
        """What the store knows of this replay key: unseen, this payment, or another.

        Read-only; the reference checks replay before anything else, and a
        payment workflow that closed leaves its answer only here.
        """
        payment = check.payment
        async with connection(self._pool) as conn:
            row = await payments.get_payment(conn, payment.replay_key)
        if row is None:
            return ClaimResult(outcome="unseen")
        if row.proof_digest != payments.digest_payload(payment.model_dump()):
            return ClaimResult(
                outcome="conflict",
                reason_code=ReasonCode.REPLAY_DETECTED,
                detail="replayKey already used by a different payment",
            )
        return _result_of(row, repeat=True)

    @activity.defn(name="claim_payment")
    async def claim_payment(self, claim: ClaimInput) -> ClaimResult:
        """Claim the replay key, the challenge and the settlement transaction.

        Joins the paid run to the payment in the same transaction, so a payment
        either pays for its run or was never claimed.
        """
        payment = claim.payment
        record = _claim_record(claim)
        try:
            async with transaction(self._pool) as conn:
                outcome = await payments.claim_payment(conn, record)
                if claim.run_id is not None:
                    await runs.attach_payment(
                        conn, claim.run_id, payment.payment_ref, record.evidence
                    )
        except ConflictError as error:
            activity.logger.info(
                "payment claim refused payment_ref=%s reason=%s detail=%s",
                payment.payment_ref,
                error.reason,
                error,
            )
            return ClaimResult(
                outcome="conflict",
                reason_code=ReasonCode.REPLAY_DETECTED,
                detail=str(error),
            )

        activity.logger.info(
            "replay key claimed payment_ref=%s repeat=%s status=%s",
            payment.payment_ref,
            outcome.repeat,
            outcome.payment.status,
        )
        return _result_of(outcome.payment, repeat=outcome.repeat)

    @activity.defn(name="record_payment")
    async def record_payment(self, change: PaymentTransition) -> None:
        """Settle or reject a pending payment and move its run, with the signal."""
        ref = f"pay_{change.replay_key}"
        async with transaction(self._pool) as conn:
            if change.state == "settled":
                await payments.mark_payment_settled(
                    conn,
                    change.replay_key,
                    settlement_tx_hash=change.settlement_tx_hash,
                    finality=change.finality or "UNVERIFIED",
                    receipt=change.receipt,
                    evidence=change.evidence,
                )
            else:
                await payments.mark_payment_rejected(
                    conn,
                    change.replay_key,
                    reason_code=(change.reason_code or ReasonCode.INVALID_PAYLOAD),
                    reason_detail=change.detail,
                )
            if change.run_id is not None:
                await runs.transition_run(
                    conn, change.run_id, _run_status_after(change), error=_error(change)
                )
            if change.signal is not None:
                await events.append_event(
                    conn,
                    signal=change.signal,
                    payment_ref=ref,
                    run_id=change.run_id,
                    reason=change.reason_code,
                )

        _count(change.signal, change.reason_code)
        if change.state == "settled" and change.waited_seconds is not None:
            metrics.FINALITY_WAIT_SECONDS.observe(change.waited_seconds)
        activity.logger.info(
            "payment recorded payment_ref=%s state=%s reason=%s",
            ref,
            change.state,
            change.reason_code,
        )

    @activity.defn(name="record_signal")
    async def record_signal(self, record: SignalRecord) -> None:
        """Append one signal to the event log and count it in Prometheus.

        Known limitation: a retry after a lost answer can log the signal twice;
        the event log has no key to tell a repeat from a second presentation.
        """
        async with transaction(self._pool) as conn:
            await events.append_event(
                conn,
                signal=record.signal,
                payment_ref=record.payment_ref,
                run_id=record.run_id,
                reason=record.reason,
            )
        if record.signal in _SIGNALS:
            _count(Signal(record.signal), _reason(record.reason))
        activity.logger.debug(
            "signal recorded payment_ref=%s signal=%s",
            record.payment_ref,
            record.signal,
        )

    @activity.defn(name="move_run")
    async def move_run(self, change: RunTransition) -> None:
        """Move a run to its next state; moving it there again changes nothing."""
        async with transaction(self._pool) as conn:
            await runs.transition_run(
                conn,
                change.run_id,
                RunStatus(change.to_status),
                result=change.result,
                error=change.error,
                execution_tx_hashes=change.execution_tx_hashes,
            )
        if change.to_status == "completed" and change.execution_seconds is not None:
            metrics.RUN_EXECUTION_SECONDS.observe(change.execution_seconds)
        activity.logger.info(
            "run moved run_id=%s status=%s", change.run_id, change.to_status
        )


def _result_of(row: PaymentRecord, *, repeat: bool) -> ClaimResult:
    return ClaimResult(
        outcome="repeat" if repeat else "claimed",
        payment_state=row.status.value,
        reason_code=row.reason_code,
        detail=row.reason_detail or "",
        settlement_tx_hash=row.settlement_tx_hash,
        receipt=row.receipt,
    )


def _claim_record(claim: ClaimInput) -> PaymentClaim:
    """The row to claim; verify already checked that the amount is an integer."""
    payment, challenge = claim.payment, claim.challenge
    return PaymentClaim(
        replay_key=payment.replay_key,
        challenge_id=challenge.challenge_id,
        proof_digest=payments.digest_payload(payment.model_dump()),
        payer=payment.tongo_address,
        recipient=challenge.recipient,
        token=payment.token,
        amount=parse_amount(payment.amount),
        network=challenge.network,
        settlement_tx_hash=claim.settlement_tx_hash,
        # The presentation lets reconcile restart a payment whose workflow is
        # gone; it holds only what the client sent, no secret.
        evidence={
            "legacy_proof": claim.legacy_proof,
            "presentation": {
                "challenge": challenge.to_wire(),
                "payment": payment.model_dump(),
            },
        },
    )


def _run_status_after(change: PaymentTransition) -> RunStatus:
    if change.state == "settled":
        return RunStatus.QUEUED
    return RunStatus.CANCELLED if change.cancelled else RunStatus.FAILED


def _error(change: PaymentTransition) -> str | None:
    if change.state == "settled":
        return None
    return f"{change.reason_code}: {change.detail}"


def _reason(text: str | None) -> ReasonCode | None:
    return ReasonCode(text) if text in _REASONS else None


def _count(signal: Signal | None, reason: ReasonCode | None) -> None:
    if signal is not None:
        metrics.count_signal(signal, reason)
