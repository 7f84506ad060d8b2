"""The facilitator's verify step: a pure decision in the reference's check order."""

from dataclasses import dataclass
from enum import StrEnum
from functools import partial

from protocol.amounts import AmountSyntaxError, parse_amount
from protocol.challenge import has_valid_signature
from protocol.envelope import is_legacy_proof, parse_envelope
from protocol.hashing import intent_hash
from protocol.models import Challenge, PaymentPayload, ReasonCode, VerifyDecision
from protocol.timestamps import parse_timestamp_ms


class ReplayState(StrEnum):
    """What the store already knows about a replay key."""

    UNSEEN = "unseen"
    PENDING = "pending"
    SETTLED = "settled"
    REJECTED = "rejected"


@dataclass(frozen=True)
class VerifyPolicy:
    """The settings verify depends on, and the time it runs at."""

    secrets: tuple[str, ...]
    legacy_proof_compat: bool
    now_ms: int


def verify_payment(
    challenge: Challenge,
    payment: PaymentPayload,
    policy: VerifyPolicy,
    replay: ReplayState = ReplayState.UNSEEN,
) -> VerifyDecision:
    """Accept the payment, or reject it with the first failing check's reason code.

    Order: replay, signature, expiry, context, token, amount, proof envelope. Every
    rejection here is final: presenting the same payload again cannot change it.
    """
    if replay is ReplayState.SETTLED:
        return _reject(
            payment.payment_ref, ReasonCode.REPLAY_DETECTED, "replayKey already settled"
        )
    decision = check_challenge(challenge, payment, policy.secrets, policy.now_ms)
    if not decision.accepted:
        return decision
    return check_terms(
        challenge, payment, legacy_proof_compat=policy.legacy_proof_compat
    )


def check_challenge(
    challenge: Challenge,
    payment: PaymentPayload,
    secrets: tuple[str, ...],
    now_ms: int,
) -> VerifyDecision:
    """The checks that need the facilitator secret and a clock: signature, expiry."""
    reject = partial(_reject, payment.payment_ref)
    if not has_valid_signature(challenge, secrets):
        return reject(ReasonCode.INVALID_PAYLOAD, "challenge.signature does not match")
    if _is_expired(challenge.expires_at, now_ms):
        return reject(ReasonCode.EXPIRED_PAYMENT, "challenge.expiresAt has passed")
    return VerifyDecision(status="accepted", payment_ref=payment.payment_ref)


def check_terms(
    challenge: Challenge, payment: PaymentPayload, *, legacy_proof_compat: bool
) -> VerifyDecision:
    """The checks of the payment against its challenge: context, token, amount, proof.

    Needs no secret and no clock, so the payment workflow runs it in its own code.
    """
    reject = partial(_reject, payment.payment_ref)
    if payment.context_hash != challenge.context_hash:
        return reject(ReasonCode.CONTEXT_MISMATCH, "payment.contextHash differs")
    if payment.token != challenge.token:
        return reject(ReasonCode.POLICY_DENIED, "payment.token differs from challenge")

    try:
        enough = parse_amount(payment.amount) >= parse_amount(challenge.min_amount)
    except AmountSyntaxError:
        return reject(ReasonCode.INVALID_PAYLOAD, "payment.amount is not an integer")
    if not enough:
        return reject(ReasonCode.POLICY_DENIED, "payment.amount is below minAmount")

    return _check_proof(challenge, payment, legacy_proof_compat)


def _check_proof(
    challenge: Challenge, payment: PaymentPayload, legacy_proof_compat: bool
) -> VerifyDecision:
    reject = partial(_reject, payment.payment_ref)
    envelope = parse_envelope(payment.proof)
    if envelope is None:
        # The legacy rule applies only to proofs that are not envelopes at all.
        if not legacy_proof_compat:
            return reject(
                ReasonCode.INVALID_PAYLOAD, "payment.proof is not an envelope"
            )
        if not is_legacy_proof(payment.proof):
            return reject(
                ReasonCode.INVALID_PAYLOAD, "payment.proof is not a legacy proof"
            )
        return VerifyDecision(
            status="accepted", payment_ref=payment.payment_ref, legacy_proof=True
        )

    expected = intent_hash(challenge.model_dump(), payment.model_dump())
    if envelope.intent_hash != expected:
        return reject(ReasonCode.CONTEXT_MISMATCH, "proof intentHash does not match")
    return VerifyDecision(
        status="accepted",
        payment_ref=payment.payment_ref,
        settlement_tx_hash=envelope.settlement_tx_hash,
    )


def _reject(payment_ref: str, reason: ReasonCode, detail: str) -> VerifyDecision:
    return VerifyDecision(
        status="rejected", reason_code=reason, detail=detail, payment_ref=payment_ref
    )


def _is_expired(expires_at: str, now_ms: int) -> bool:
    # Known limitation: the reference compares Date.parse(expiresAt), which is NaN
    # for an unreadable date and so never "expired". We fail closed instead: such
    # a challenge (signed by us, so only a bug could make one) counts as expired.
    expires_ms = parse_timestamp_ms(expires_at)
    return expires_ms is None or expires_ms <= now_ms
