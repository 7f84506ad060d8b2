"""Every shared Cloak x402 vector is reproduced exactly, one test per case."""

import pytest

from protocol.conformance import CaseResult, load_vectors, run_vectors
from tests.paths import VECTORS_PATH, require


def _case_ids() -> list[str]:
    cases = load_vectors(require(VECTORS_PATH))
    return [
        f"{group}/{case['name']}" for group, items in cases.items() for case in items
    ]


RESULTS = {f"{r.group}/{r.name}": r for r in run_vectors(require(VECTORS_PATH))}


@pytest.mark.parametrize("case_id", _case_ids())
def test_vector_case_reproduces_expected_value(case_id: str) -> None:
    result: CaseResult = RESULTS[case_id]

    assert result.actual == result.expected


def test_shared_vectors_cover_every_group() -> None:
    groups = {case_id.split("/")[0] for case_id in RESULTS}

    assert groups == {"challenge_signature", "context_hash", "intent_hash", "verify"}
    assert len(RESULTS) >= 56
