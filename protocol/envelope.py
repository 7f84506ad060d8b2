"""The proof envelope inside a payment payload, and the legacy opaque proof rule."""

import re
from typing import Any

from protocol import jsjson
from protocol.models import ENVELOPE_VERSION, PROOF_TYPE, ProofEnvelope

MIN_INTENT_HASH_LENGTH = 16
_TX_HASH = re.compile(r"0x[0-9a-fA-F]+")
_LEGACY_PROOF = re.compile(r"[a-zA-Z0-9._:-]{8,4096}")


def parse_envelope(proof: str) -> ProofEnvelope | None:
    """The envelope in ``proof``, or None when it is not a well-formed envelope."""
    try:
        parsed = jsjson.parse(proof)
    except jsjson.JSONSyntaxError:
        return None
    if not isinstance(parsed, dict):
        return None
    if parsed.get("envelopeVersion") != ENVELOPE_VERSION:
        return None
    if parsed.get("proofType") != PROOF_TYPE:
        return None

    intent = parsed.get("intentHash")
    if not isinstance(intent, str):
        return None
    if jsjson.utf16_length(intent) < MIN_INTENT_HASH_LENGTH:
        return None

    tx_hash = parsed.get("settlementTxHash")
    if _is_truthy(tx_hash):
        # The reference tests the value's string form, so only that form is kept.
        tx_hash = _to_js_string(tx_hash)
        if not _TX_HASH.fullmatch(tx_hash):
            return None
    else:
        tx_hash = None
    return ProofEnvelope.model_validate({**parsed, "settlementTxHash": tx_hash})


def is_legacy_proof(proof: str) -> bool:
    """An opaque legacy token, accepted only with X402_LEGACY_PROOF_COMPAT."""
    return bool(_LEGACY_PROOF.fullmatch(proof))


def _is_truthy(value: Any) -> bool:
    return value not in (None, False, "", 0)


def _to_js_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join("" if item is None else _to_js_string(item) for item in value)
    if isinstance(value, dict):
        return "[object Object]"
    return jsjson.stringify(value)
