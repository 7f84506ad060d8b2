"""Pure answers of the payment workflow: decisions, stages and signals from state."""

from typing import Any

from protocol.models import ReasonCode, SettleResponse
from protocol.signals import Signal
from workflows.models import ClaimResult, RunOutcome, Stage


def answer_from_record(ref: str, claim: ClaimResult) -> SettleResponse:
    """The answer recorded by an earlier run of this payment's workflow."""
    if claim.payment_state == "settled":
        return SettleResponse(
            status="settled",
            payment_ref=ref,
            tx_hash=claim.settlement_tx_hash,
            receipt=claim.receipt,
        )
    failed = claim.reason_code in (ReasonCode.SETTLEMENT_FAILED, ReasonCode.TIMEOUT)
    return SettleResponse(
        status="failed" if failed else "rejected",
        payment_ref=ref,
        tx_hash=claim.settlement_tx_hash,
        reason_code=claim.reason_code,
        detail=claim.detail,
    )


def payment_state_of(decision: SettleResponse | None) -> str | None:
    """pending, settled or rejected: the payment row's status for a decision."""
    if decision is None:
        return None
    return {"settled": "settled", "pending": "pending"}.get(decision.status, "rejected")


def replay_signal_for(decision: SettleResponse) -> Signal:
    """The signal of a repeat presentation, by where the payment stands."""
    if decision.status == "settled":
        return Signal.REPLAY_SETTLED
    if decision.status == "pending":
        return Signal.REPLAY_PENDING
    return Signal.REPLAY_REJECTED


def run_state_after(change: dict[str, Any]) -> str:
    """The run's state once its payment was settled, rejected or cancelled."""
    if change["state"] == "settled":
        return "queued"
    return "cancelled" if change.get("cancelled") else "failed"


def final_stage(decision: SettleResponse, run: RunOutcome | None) -> Stage:
    """The stage a closed payment workflow shows in X402State."""
    if decision.status == "rejected":
        return (
            Stage.CANCELLED if run and run.run_state == "cancelled" else Stage.REJECTED
        )
    if decision.status == "failed":
        return Stage.FAILED
    if run is None:
        return Stage.SETTLED
    return {"completed": Stage.COMPLETED, "cancelled": Stage.CANCELLED}.get(
        run.run_state, Stage.FAILED
    )
