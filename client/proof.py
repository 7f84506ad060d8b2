"""What pays a challenge, and the payment payload with its proof envelope."""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from protocol import jsjson
from protocol.hashing import intent_hash
from protocol.models import ENVELOPE_VERSION, PROOF_TYPE, Challenge, PaymentPayload
from protocol.timestamps import format_timestamp


@dataclass(frozen=True)
class Payment:
    """A payment made on chain: who paid, how much, and the settlement transaction."""

    tongo_address: str
    amount: str
    settlement_tx_hash: str | None = None


class ProofProvider(Protocol):
    """Something that pays a challenge and returns what the proof envelope needs."""

    async def pay(self, challenge: Challenge) -> Payment: ...


class SyncProofProvider(Protocol):
    """A ProofProvider for the blocking client: ``pay`` returns when it has paid."""

    def pay(self, challenge: Challenge) -> Payment: ...


def build_payment(
    challenge: Challenge,
    payment: Payment,
    *,
    replay_key: str | None = None,
    nonce: str | None = None,
    now: datetime | None = None,
) -> PaymentPayload:
    """The payload that presents ``payment`` as the answer to ``challenge``.

    A fresh random replay key and nonce are drawn unless given. The replay key
    names the payment (its reference is ``pay_<replayKey>``), so presenting the
    same payload again is recognised as the same payment, not a second one.
    """
    fields: dict[str, Any] = {
        "version": challenge.version,
        "scheme": challenge.scheme,
        "challengeId": challenge.challenge_id,
        "tongoAddress": payment.tongo_address,
        "token": challenge.token,
        "amount": payment.amount,
        "proof": "",
        "replayKey": replay_key or f"rk_{secrets.token_hex(16)}",
        "contextHash": challenge.context_hash,
        "expiresAt": challenge.expires_at,
        "nonce": nonce or secrets.token_hex(16),
        "createdAt": format_timestamp(now or datetime.now(UTC)),
    }
    fields["proof"] = encode_envelope(challenge, fields, payment.settlement_tx_hash)
    return PaymentPayload.model_validate(fields)


def encode_envelope(
    challenge: Challenge,
    payment_fields: dict[str, Any],
    settlement_tx_hash: str | None,
) -> str:
    """The proof envelope JSON, bound to these terms by its intent hash."""
    envelope: dict[str, Any] = {
        "envelopeVersion": ENVELOPE_VERSION,
        "proofType": PROOF_TYPE,
        "intentHash": intent_hash(challenge.model_dump(), payment_fields),
    }
    if settlement_tx_hash:
        envelope["settlementTxHash"] = settlement_tx_hash
    return jsjson.stringify(envelope)
