"""Challenges are built, signed and checked as the wire protocol says."""

from protocol.challenge import has_valid_signature, signing_message
from protocol.hashing import context_hash
from tests.factories import SECRET, make_challenge


def test_built_challenge_is_signed_with_the_current_secret() -> None:
    challenge = make_challenge()

    assert has_valid_signature(challenge, (SECRET,))
    assert not has_valid_signature(challenge, ("another-secret-entirely",))


def test_previous_secret_still_verifies_during_rotation() -> None:
    challenge = make_challenge(secret="old-secret-before-rotation")

    assert has_valid_signature(challenge, (SECRET, "old-secret-before-rotation"))
    assert not has_valid_signature(challenge, (SECRET,))


def test_challenge_binds_context_and_lowercases_recipient() -> None:
    context = {"path": "/api/v1/marketplace/runs", "agent": "agent-1"}

    challenge = make_challenge(context=context, recipient="0xABCDEF")

    assert challenge.context_hash == context_hash(context)
    assert challenge.recipient == "0xabcdef"


def test_challenge_expires_after_the_configured_seconds() -> None:
    challenge = make_challenge(expiry_seconds=300)

    assert challenge.expires_at == "2026-12-03T12:05:00.000Z"


def test_empty_tongo_recipient_is_left_out_of_wire_and_signature() -> None:
    challenge = make_challenge(tongo_recipient="")

    assert "tongoRecipient" not in challenge.to_wire()
    assert "tongoRecipient" not in signing_message(challenge.model_dump())


def test_tampered_min_amount_breaks_the_signature() -> None:
    challenge = make_challenge()

    tampered = challenge.model_copy(update={"min_amount": "1"})

    assert not has_valid_signature(tampered, (SECRET,))
