"""Context hash and intent hash of the Cloak x402 protocol."""

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from protocol import jsjson

# Must match: the reference keys the context HMAC with this literal, not a secret.
CONTEXT_HASH_KEY = b"context-hash"

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_SECOND_PRIME = 0x27D4EB2D
_MASK32 = 0xFFFFFFFF


def context_hash(context: Mapping[str, Any]) -> str:
    """Bind a challenge to a request: HMAC of the context with top-level keys sorted.

    Only the top level is sorted (by UTF-16 code units); nested objects keep their
    order. A top-level ``__proto__`` key is dropped, because the reference copies
    the keys into a plain object where that name sets the prototype instead.
    """
    keys = sorted((k for k in context if k != "__proto__"), key=jsjson.utf16_sort_key)
    message = jsjson.stringify({key: context[key] for key in keys})
    return hmac.new(
        CONTEXT_HASH_KEY, jsjson.to_utf8(message), hashlib.sha256
    ).hexdigest()


def intent_fields(challenge: Mapping[str, Any], payment: Mapping[str, Any]) -> dict:
    """The challenge and payment values an intent hash covers, keys sorted."""
    fields = {
        "amount": payment.get("amount"),
        "challengeId": challenge.get("challengeId"),
        "contextHash": challenge.get("contextHash"),
        "expiresAt": challenge.get("expiresAt"),
        "nonce": payment.get("nonce"),
        "recipient": str(challenge.get("recipient", "")).lower(),
        "replayKey": payment.get("replayKey"),
        "token": challenge.get("token"),
        "tongoAddress": payment.get("tongoAddress"),
    }
    # JSON.stringify leaves out keys whose value is undefined.
    return {key: value for key, value in fields.items() if value is not None}


def intent_hash(challenge: Mapping[str, Any], payment: Mapping[str, Any]) -> str:
    """The 64-hex digest that binds a proof envelope to one challenge and payment.

    It is a checksum, not a signature: anyone can compute it. It only proves that
    the envelope was made for these exact terms.
    """
    return fnv_digest(jsjson.stringify(intent_fields(challenge, payment)))


def fnv_digest(text: str) -> str:
    """Two 32-bit FNV-1a style lanes over UTF-16 code units, repeated to 64 hex."""
    first = second = _FNV_OFFSET
    for unit in jsjson.utf16_units(text):
        first = ((first ^ unit) * _FNV_PRIME) & _MASK32
        second = ((second ^ unit) * _SECOND_PRIME) & _MASK32
    return f"{first:08x}{second:08x}" * 4
