"""verify_payment decides in the reference's order and explains each rejection."""

import pytest

from protocol.challenge import sign_fields
from protocol.models import Challenge, ReasonCode
from protocol.verify import ReplayState, VerifyPolicy, verify_payment
from tests.factories import NOW_MS, SECRET, TX_HASH, make_challenge, make_payment

POLICY = VerifyPolicy(secrets=(SECRET,), legacy_proof_compat=False, now_ms=NOW_MS)


def test_valid_payment_is_accepted_with_its_settlement_tx() -> None:
    challenge = make_challenge()

    decision = verify_payment(challenge, make_payment(challenge), POLICY)

    assert decision.accepted
    assert decision.settlement_tx_hash == TX_HASH
    assert decision.payment_ref == "pay_rk_test-1"


def test_settled_replay_key_is_rejected_before_anything_else() -> None:
    challenge = make_challenge(secret="not-our-secret-at-all")

    decision = verify_payment(
        challenge, make_payment(challenge), POLICY, ReplayState.SETTLED
    )

    assert decision.reason_code is ReasonCode.REPLAY_DETECTED


@pytest.mark.parametrize("state", [ReplayState.PENDING, ReplayState.REJECTED])
def test_unsettled_replay_key_does_not_block_verify(state: ReplayState) -> None:
    challenge = make_challenge()

    decision = verify_payment(challenge, make_payment(challenge), POLICY, state)

    assert decision.accepted


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"amount": "99"}, ReasonCode.POLICY_DENIED),
        ({"amount": "1e3"}, ReasonCode.INVALID_PAYLOAD),
        ({"token": "ETH"}, ReasonCode.POLICY_DENIED),
        ({"contextHash": "00" * 32}, ReasonCode.CONTEXT_MISMATCH),
        ({"proof": "not-an-envelope"}, ReasonCode.INVALID_PAYLOAD),
    ],
)
def test_payment_terms_are_rejected_with_their_reason(
    overrides: dict[str, str], reason: ReasonCode
) -> None:
    challenge = make_challenge()
    payment = make_payment(challenge, **overrides)

    decision = verify_payment(challenge, payment, POLICY)

    assert decision.reason_code is reason
    assert decision.detail


def test_payment_after_expiry_is_rejected() -> None:
    challenge = make_challenge()
    later = VerifyPolicy(POLICY.secrets, False, now_ms=NOW_MS + 300_000)

    decision = verify_payment(challenge, make_payment(challenge), later)

    assert decision.reason_code is ReasonCode.EXPIRED_PAYMENT


def test_envelope_for_another_payment_is_a_context_mismatch() -> None:
    challenge = make_challenge()
    other = make_payment(challenge, replay_key="rk_other")

    payment = make_payment(challenge, proof=other.proof)

    assert verify_payment(challenge, payment, POLICY).reason_code is (
        ReasonCode.CONTEXT_MISMATCH
    )


def test_legacy_proof_needs_the_compat_switch() -> None:
    challenge = make_challenge()
    payment = make_payment(challenge, proof="legacy.proof:abc-123")
    compat = VerifyPolicy(POLICY.secrets, legacy_proof_compat=True, now_ms=NOW_MS)

    refused = verify_payment(challenge, payment, POLICY)
    accepted = verify_payment(challenge, payment, compat)

    assert refused.reason_code is ReasonCode.INVALID_PAYLOAD
    assert accepted.accepted and accepted.legacy_proof
    assert accepted.settlement_tx_hash is None


def test_unreadable_expiry_fails_closed_as_expired() -> None:
    fields = make_challenge().model_dump()
    fields["expiresAt"] = "next tuesday"
    fields["signature"] = sign_fields(fields, SECRET)
    challenge = Challenge.model_validate(fields)

    decision = verify_payment(challenge, make_payment(challenge), POLICY)

    assert decision.reason_code is ReasonCode.EXPIRED_PAYMENT
