"""Signed payment receipts: proof for a client that its payment settled."""

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from pydantic import Field

from protocol import jsjson
from protocol.models import WireModel

RECEIPT_VERSION = "1"


class PaymentReceipt(WireModel):
    """What settled, where and when; ``signature`` covers every other field."""

    receipt_version: str = RECEIPT_VERSION
    payment_ref: str
    replay_key: str
    challenge_id: str
    settlement_tx_hash: str
    amount: str
    token: str
    recipient: str
    network: str
    finality: str
    settled_at: str
    signature: str = Field(default="")


def receipt_message(receipt: PaymentReceipt) -> str:
    """The JSON text a receipt signature covers: every field but the signature."""
    fields: dict[str, Any] = receipt.model_dump(exclude={"signature"})
    return jsjson.stringify(fields)


def sign_receipt(receipt: PaymentReceipt, secret: str) -> PaymentReceipt:
    """The receipt with its HMAC-SHA256 signature under the facilitator secret."""
    digest = hmac.new(
        jsjson.to_utf8(secret), jsjson.to_utf8(receipt_message(receipt)), hashlib.sha256
    )
    return receipt.model_copy(update={"signature": digest.hexdigest()})


def has_valid_receipt_signature(
    receipt: PaymentReceipt, secrets: Iterable[str]
) -> bool:
    """Whether one of ``secrets`` (current, then previous) signed this receipt."""
    presented = receipt.signature.encode()
    return any(
        hmac.compare_digest(sign_receipt(receipt, secret).signature.encode(), presented)
        for secret in secrets
    )
