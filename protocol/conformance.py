"""Runs a Cloak x402 vectors file through this implementation, case by case."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from protocol import jsjson
from protocol.challenge import sign_fields
from protocol.hashing import context_hash, intent_hash
from protocol.models import Challenge, PaymentPayload
from protocol.timestamps import parse_timestamp_ms
from protocol.verify import VerifyPolicy, verify_payment


@dataclass(frozen=True)
class CaseResult:
    """One vector: which group, its name, and what differed if it failed."""

    group: str
    name: str
    expected: Any
    actual: Any

    @property
    def passed(self) -> bool:
        return self.expected == self.actual


def load_vectors(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The ``cases`` of a vectors file, read with ECMAScript JSON semantics."""
    document = jsjson.parse(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or not isinstance(document.get("cases"), dict):
        raise ValueError(f"{path}: not a vectors file (no 'cases' object)")
    unknown = set(document["cases"]) - set(_RUNNERS)
    if unknown:
        raise ValueError(f"{path}: unknown case groups {sorted(unknown)}")
    return document["cases"]


def run_vectors(path: Path) -> Iterator[CaseResult]:
    """Every case of the file, run and compared with its expected value."""
    for group, cases in load_vectors(path).items():
        for case in cases:
            yield _RUNNERS[group](case)


def _challenge_signature(case: dict[str, Any]) -> CaseResult:
    actual = sign_fields(case["challenge"], case["secret"])
    return CaseResult(
        "challenge_signature", case["name"], case["expected_signature"], actual
    )


def _context_hash(case: dict[str, Any]) -> CaseResult:
    actual = context_hash(case["context"])
    return CaseResult(
        "context_hash", case["name"], case["expected_context_hash"], actual
    )


def _intent_hash(case: dict[str, Any]) -> CaseResult:
    actual = intent_hash(case["challenge"], case["payment"])
    return CaseResult("intent_hash", case["name"], case["expected_intent_hash"], actual)


def _verify(case: dict[str, Any]) -> CaseResult:
    now_ms = parse_timestamp_ms(case["now"])
    if now_ms is None:
        raise ValueError(f"{case['name']}: 'now' is not an ISO timestamp")
    policy = VerifyPolicy(
        secrets=(case["secret"],),
        legacy_proof_compat=bool(case["legacy_proof_compat"]),
        now_ms=now_ms,
    )

    try:
        challenge = Challenge.model_validate(case["challenge"])
        payment = PaymentPayload.model_validate(case["payment"])
    except ValidationError:
        # A payload that does not even parse is what the API answers with
        # INVALID_PAYLOAD before verify runs.
        actual = {"status": "rejected", "reasonCode": "INVALID_PAYLOAD"}
    else:
        decision = verify_payment(challenge, payment, policy)
        reason = decision.reason_code
        actual = {
            "status": decision.status,
            "reasonCode": None if reason is None else reason.value,
        }
    return CaseResult("verify", case["name"], case["expected"], actual)


_RUNNERS: dict[str, Callable[[dict[str, Any]], CaseResult]] = {
    "challenge_signature": _challenge_signature,
    "context_hash": _context_hash,
    "intent_hash": _intent_hash,
    "verify": _verify,
}
