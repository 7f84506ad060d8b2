"""Builders of challenges and payments for tests, in the wire protocol's terms."""

import json
from datetime import UTC, datetime
from typing import Any

from protocol.challenge import build_challenge
from protocol.hashing import intent_hash
from protocol.models import Challenge, PaymentPayload
from protocol.timestamps import format_timestamp, to_ms

SECRET = "test-facilitator-secret-0123456789"
RECIPIENT = "0x1425b174d1be627a1216f1871db61a89a4f58fe9f667cad778160699b3fdb22"
PAYER_TONGO = "Tg5xQ8rLmN3pV7wZ2kYcB9dF4hJ6sA1eU8oR3tW5yXq"
TX_HASH = "0x3de677cc353d4b8738d248d094541bb1c13f395f0d743748c2bb7bb135e003c"
NOW = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
NOW_MS = to_ms(NOW)


def make_challenge(**overrides: Any) -> Challenge:
    """A challenge for 100 STRK units to RECIPIENT, signed with SECRET at NOW."""
    terms: dict[str, Any] = {
        "secret": SECRET,
        "network": "sepolia",
        "token": "STRK",
        "min_amount": "100",
        "recipient": RECIPIENT,
        "context": {"method": "POST", "path": "/api/v1/marketplace/runs"},
        "facilitator": "http://127.0.0.1:8000/api/v1/marketplace/payments/x402",
        "now": NOW,
        "expiry_seconds": 300,
    }
    return build_challenge(**(terms | overrides))


def make_payment(
    challenge: Challenge,
    *,
    replay_key: str = "rk_test-1",
    amount: str | None = None,
    settlement_tx_hash: str | None = TX_HASH,
    proof: str | None = None,
    **overrides: Any,
) -> PaymentPayload:
    """A payment that answers ``challenge``, with an envelope naming the tx."""
    fields: dict[str, Any] = {
        "version": "1",
        "scheme": challenge.scheme,
        "challengeId": challenge.challenge_id,
        "tongoAddress": PAYER_TONGO,
        "token": challenge.token,
        "amount": amount or challenge.min_amount,
        "proof": "",
        "replayKey": replay_key,
        "contextHash": challenge.context_hash,
        "expiresAt": challenge.expires_at,
        "nonce": f"nonce_{replay_key}",
        "createdAt": format_timestamp(NOW),
    } | overrides
    fields["proof"] = (
        proof
        if proof is not None
        else envelope_for(challenge, fields, settlement_tx_hash)
    )
    return PaymentPayload.model_validate(fields)


def envelope_for(
    challenge: Challenge, payment: dict[str, Any], settlement_tx_hash: str | None
) -> str:
    """The proof envelope JSON a paying client attaches."""
    envelope: dict[str, Any] = {
        "envelopeVersion": "1",
        "proofType": "tongo_attestation_v1",
        "intentHash": intent_hash(challenge.model_dump(), payment),
    }
    if settlement_tx_hash:
        envelope["settlementTxHash"] = settlement_tx_hash
    return json.dumps(envelope, separators=(",", ":"))
