"""Building, signing and checking x402 challenges with the facilitator secret."""

import hashlib
import hmac
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from protocol import jsjson
from protocol.hashing import context_hash
from protocol.models import PROTOCOL_VERSION, SCHEME, Challenge
from protocol.timestamps import format_timestamp

# Must match: the reference signs these fields in exactly this order.
SIGNED_FIELDS = (
    "version",
    "scheme",
    "challengeId",
    "network",
    "token",
    "minAmount",
    "recipient",
    "tongoRecipient",
    "contextHash",
    "expiresAt",
    "facilitator",
)


def signing_message(fields: Mapping[str, Any]) -> str:
    """The JSON text that a challenge signature covers."""
    signed: dict[str, Any] = {}
    for name in SIGNED_FIELDS:
        if name not in fields:
            continue
        # tongoRecipient enters only when set; an empty one is left out.
        if name == "tongoRecipient" and not fields[name]:
            continue
        signed[name] = fields[name]
    return jsjson.stringify(signed)


def sign_fields(fields: Mapping[str, Any], secret: str) -> str:
    """Lowercase hex HMAC-SHA256 of the signing message under ``secret``."""
    message = jsjson.to_utf8(signing_message(fields))
    return hmac.new(jsjson.to_utf8(secret), message, hashlib.sha256).hexdigest()


def has_valid_signature(challenge: Challenge, secrets: Iterable[str]) -> bool:
    """Whether any of ``secrets`` (current, then previous) signed this challenge."""
    fields = challenge.model_dump()
    presented = jsjson.to_utf8(challenge.signature)
    return any(
        hmac.compare_digest(sign_fields(fields, secret).encode(), presented)
        for secret in secrets
    )


def build_challenge(
    *,
    secret: str,
    network: str,
    token: str,
    min_amount: str,
    recipient: str,
    context: Mapping[str, Any],
    facilitator: str,
    now: datetime,
    expiry_seconds: int,
    tongo_recipient: str | None = None,
    challenge_id: str | None = None,
) -> Challenge:
    """A new challenge bound to ``context``, signed with the current secret."""
    fields: dict[str, Any] = {
        "version": PROTOCOL_VERSION,
        "scheme": SCHEME,
        "challengeId": challenge_id or str(uuid.uuid4()),
        "network": network,
        "token": token,
        "minAmount": min_amount,
        "recipient": recipient.lower(),
        "tongoRecipient": tongo_recipient or None,
        "contextHash": context_hash(context),
        "expiresAt": format_timestamp(now + timedelta(seconds=expiry_seconds)),
        "facilitator": facilitator,
    }
    fields["signature"] = sign_fields(fields, secret)
    return Challenge.model_validate(fields)
