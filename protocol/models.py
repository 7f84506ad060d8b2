"""Wire models of Cloak x402 v1: challenge, payment, proof envelope, decisions."""

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

PROTOCOL_VERSION = "1"
SCHEME = "cloak-shielded-x402"
ENVELOPE_VERSION = "1"
PROOF_TYPE = "tongo_attestation_v1"


class ReasonCode(StrEnum):
    """Machine-readable reasons, spelled exactly as the reference spells them."""

    INVALID_PAYLOAD = "INVALID_PAYLOAD"
    EXPIRED_PAYMENT = "EXPIRED_PAYMENT"
    REPLAY_DETECTED = "REPLAY_DETECTED"
    CONTEXT_MISMATCH = "CONTEXT_MISMATCH"
    POLICY_DENIED = "POLICY_DENIED"
    RPC_FAILURE = "RPC_FAILURE"
    SETTLEMENT_FAILED = "SETTLEMENT_FAILED"
    TIMEOUT = "TIMEOUT"


class WireModel(BaseModel):
    """Snake-case attributes in Python, camelCase names on the wire."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        frozen=True,
        strict=True,
        extra="ignore",
    )


class Challenge(WireModel):
    """A signed offer: pay at least ``min_amount`` of ``token`` to ``recipient``."""

    # Must match: the field order of the signed message in protocol/challenge.py.
    version: str
    scheme: str
    challenge_id: str
    network: str
    token: str
    min_amount: str
    recipient: str
    tongo_recipient: str | None = None
    context_hash: str
    expires_at: str
    facilitator: str
    signature: str

    def to_wire(self) -> dict[str, Any]:
        """The JSON object a client receives, without an empty tongoRecipient."""
        return self.model_dump(exclude_none=True)


class PaymentPayload(WireModel):
    """What a client presents after paying: its proof names the settlement tx."""

    version: str
    scheme: str
    challenge_id: str
    tongo_address: str
    token: str
    amount: str
    proof: str
    replay_key: str
    context_hash: str
    expires_at: str
    nonce: str
    created_at: str

    @property
    def payment_ref(self) -> str:
        """The payment reference, also the id of the payment's workflow."""
        return payment_ref_for(self.replay_key)


class ProofEnvelope(WireModel):
    """The JSON inside ``PaymentPayload.proof``; unknown fields are kept."""

    model_config = ConfigDict(extra="allow", strict=False)

    envelope_version: Literal["1"]
    proof_type: Literal["tongo_attestation_v1"]
    intent_hash: str
    settlement_tx_hash: str | None = None


class VerifyDecision(WireModel):
    """Outcome of verify: accepted, or rejected with the first failing reason."""

    status: Literal["accepted", "rejected"]
    reason_code: ReasonCode | None = None
    detail: str = ""
    retryable: bool = False
    payment_ref: str
    settlement_tx_hash: str | None = None
    legacy_proof: bool = False

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


class SettleResponse(WireModel):
    """Answer to settle: where the payment stands, with its reference."""

    status: Literal["settled", "pending", "failed", "rejected"]
    payment_ref: str
    tx_hash: str | None = None
    reason_code: ReasonCode | None = None
    detail: str = ""
    receipt: dict[str, Any] | None = Field(default=None)


def payment_ref_for(replay_key: str) -> str:
    """``pay_<replayKey>``: one replay key, one payment reference, one workflow."""
    return f"pay_{replay_key}"
