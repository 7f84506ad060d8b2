"""Signing activities: challenge re-checks and payment receipts, with the secrets."""

import time
from typing import Any

from temporalio import activity

from protocol.models import VerifyDecision
from protocol.receipt import PaymentReceipt, sign_receipt
from protocol.verify import check_challenge
from workflows.models import ChallengeCheckInput


class SigningActivities:
    """Everything that needs ``X402_FACILITATOR_SECRET``, kept out of workflows.

    The secrets stay in the worker's memory: workflow history only ever holds a
    decision or a signature the protocol itself hands to the client.
    """

    def __init__(self, secrets: tuple[str, ...]) -> None:
        if not secrets:
            raise ValueError("at least one facilitator secret is needed")
        self._secrets = secrets

    @activity.defn(name="check_challenge")
    async def check_challenge(self, check: ChallengeCheckInput) -> VerifyDecision:
        """Accepted only for a challenge this service signed that has not expired.

        Pure CPU and read-only, so a retry is always safe; a rejection is an
        answer (INVALID_PAYLOAD or EXPIRED_PAYMENT), not an error.
        """
        now_ms = int(time.time() * 1000)
        decision = check_challenge(
            check.challenge, check.payment, self._secrets, now_ms
        )
        activity.logger.info(
            "challenge checked payment_ref=%s status=%s reason=%s",
            check.payment.payment_ref,
            decision.status,
            decision.reason_code,
        )
        return decision

    @activity.defn(name="sign_receipt")
    async def sign_receipt(self, receipt: PaymentReceipt) -> dict[str, Any]:
        """The signed payment receipt; the same facts always give the same receipt."""
        signed = sign_receipt(receipt, self._secrets[0])
        activity.logger.info("receipt signed payment_ref=%s", receipt.payment_ref)
        return signed.model_dump()
