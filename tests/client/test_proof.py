"""build_payment makes a payload that the facilitator's term checks accept."""

import json
from datetime import UTC, datetime, timedelta, timezone

from client.proof import Payment, build_payment
from protocol.envelope import parse_envelope
from protocol.hashing import intent_hash
from protocol.verify import check_terms
from tests.factories import PAYER_TONGO, TX_HASH, make_challenge

PAID = Payment(tongo_address=PAYER_TONGO, amount="100", settlement_tx_hash=TX_HASH)


def test_built_payment_passes_check_terms_with_its_settlement_tx() -> None:
    challenge = make_challenge()

    payment = build_payment(challenge, PAID)

    decision = check_terms(challenge, payment, legacy_proof_compat=False)
    assert decision.accepted, decision.detail
    assert decision.settlement_tx_hash == TX_HASH
    assert decision.payment_ref == payment.payment_ref


def test_built_payment_copies_the_challenge_terms() -> None:
    challenge = make_challenge()

    payment = build_payment(challenge, PAID)

    assert payment.version == challenge.version
    assert payment.scheme == challenge.scheme
    assert payment.challenge_id == challenge.challenge_id
    assert payment.token == challenge.token
    assert payment.context_hash == challenge.context_hash
    assert payment.expires_at == challenge.expires_at
    assert (payment.tongo_address, payment.amount) == (PAYER_TONGO, "100")


def test_envelope_intent_hash_covers_challenge_and_payment_wire_dicts() -> None:
    challenge = make_challenge()

    payment = build_payment(challenge, PAID)

    envelope = json.loads(payment.proof)
    assert envelope == {
        "envelopeVersion": "1",
        "proofType": "tongo_attestation_v1",
        "intentHash": intent_hash(challenge.model_dump(), payment.model_dump()),
        "settlementTxHash": TX_HASH,
    }


def test_envelope_without_settlement_tx_leaves_the_field_out() -> None:
    challenge = make_challenge()

    payment = build_payment(challenge, Payment(PAYER_TONGO, "100"))

    assert "settlementTxHash" not in json.loads(payment.proof)
    envelope = parse_envelope(payment.proof)
    assert envelope is not None and envelope.settlement_tx_hash is None
    assert check_terms(challenge, payment, legacy_proof_compat=False).accepted


def test_each_payment_draws_a_fresh_replay_key_and_nonce() -> None:
    challenge = make_challenge()

    first = build_payment(challenge, PAID)
    second = build_payment(challenge, PAID)

    assert first.replay_key != second.replay_key
    assert first.nonce != second.nonce
    assert first.payment_ref == f"pay_{first.replay_key}"


def test_given_replay_key_nonce_and_time_are_used_as_they_are() -> None:
    challenge = make_challenge()
    paris = timezone(timedelta(hours=1))

    payment = build_payment(
        challenge,
        PAID,
        replay_key="rk_fixed",
        nonce="nonce_fixed",
        now=datetime(2026, 12, 3, 13, 0, 0, 123456, tzinfo=paris),
    )

    assert payment.replay_key == "rk_fixed"
    assert payment.nonce == "nonce_fixed"
    assert payment.created_at == "2026-12-03T12:00:00.123Z"
    assert payment.payment_ref == "pay_rk_fixed"


def test_created_at_defaults_to_now_in_iso_milliseconds_utc() -> None:
    before = datetime.now(UTC).replace(microsecond=0)

    payment = build_payment(make_challenge(), PAID)

    created = datetime.strptime(payment.created_at, "%Y-%m-%dT%H:%M:%S.%fZ")
    assert payment.created_at.endswith("Z") and len(payment.created_at) == 24
    assert created.replace(tzinfo=UTC) >= before
