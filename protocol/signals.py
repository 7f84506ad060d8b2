"""The runbook's twelve payment signals: counted in Prometheus and in the event log."""

from enum import StrEnum


class Signal(StrEnum):
    """One countable event of the paywall, in the runbook's spelling."""

    CHALLENGE_ISSUED = "challenge_issued"
    VERIFY_ACCEPTED = "verify_accepted"
    VERIFY_REJECTED = "verify_rejected"
    SETTLE_SETTLED = "settle_settled"
    SETTLE_PENDING = "settle_pending"
    SETTLE_FAILED = "settle_failed"
    SETTLE_REJECTED = "settle_rejected"
    REPLAY_PENDING = "replay_pending"
    REPLAY_SETTLED = "replay_settled"
    REPLAY_REJECTED = "replay_rejected"
    PAYWALL_REQUIRED = "paywall_required"
    PAYWALL_PAID = "paywall_paid"


DESCRIPTIONS: dict[Signal, str] = {
    Signal.CHALLENGE_ISSUED: "Signed x402 challenges handed out",
    Signal.VERIFY_ACCEPTED: "Payment payloads that passed verify",
    Signal.VERIFY_REJECTED: "Payment payloads that failed verify",
    Signal.SETTLE_SETTLED: "Settle answers: settled",
    Signal.SETTLE_PENDING: "Settle answers: pending finality",
    Signal.SETTLE_FAILED: "Settle answers: settlement failed on chain",
    Signal.SETTLE_REJECTED: "Settle answers: payload rejected",
    Signal.REPLAY_PENDING: "Repeat presentations of a still pending payment",
    Signal.REPLAY_SETTLED: "Repeat presentations of a settled payment",
    Signal.REPLAY_REJECTED: "Repeat presentations of a rejected payment",
    Signal.PAYWALL_REQUIRED: "Billable runs answered with 402 Payment Required",
    Signal.PAYWALL_PAID: "Billable runs whose payment was accepted",
}
