"""Data that crosses between the payment workflow, its activities and the API."""

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol.models import Challenge, PaymentPayload, ReasonCode, SettleResponse
from protocol.signals import Signal


class Model(BaseModel):
    """Immutable payloads that the pydantic data converter stores in history."""

    model_config = ConfigDict(frozen=True)


class Stage(StrEnum):
    """Where a payment is; kept in the X402State search attribute."""

    CHALLENGE = "challenge"
    VERIFY = "verify"
    SETTLE = "settle"
    FINALITY_WAIT = "finality_wait"
    RUN_EXECUTION = "run_execution"
    RECEIPT = "receipt"
    SETTLED = "settled"
    COMPLETED = "completed"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class ReceiptOutcome(StrEnum):
    """What one receipt check concluded about the settlement transaction."""

    SETTLED = "settled"
    PENDING = "pending"
    FAILED = "failed"


class ReceiptCheckInput(Model):
    """One receipt check: the transaction and the transfer it must contain."""

    payment_ref: str
    settlement_tx_hash: str
    network: str
    token: str
    recipient: str
    min_amount: str
    required_finality: str


class ReceiptCheck(Model):
    """The outcome of a receipt check and the evidence behind it."""

    outcome: ReceiptOutcome
    finality: str | None = None
    execution_status: str | None = None
    detail: str = ""
    transfer_check: Literal["verified", "unchecked", "missing", "not_applicable"] = (
        "not_applicable"
    )
    transferred: str | None = None
    block_number: int | None = None
    rpc_url: str | None = None


class PaymentPolicy(Model):
    """The settings a payment workflow follows, fixed by its starter at start.

    Workflows read no settings themselves; carrying them in the input also shows
    in the Temporal UI which rules a payment ran under.
    """

    first_interval_seconds: float = 2.0
    backoff: float = 2.0
    max_interval_seconds: float = 300.0
    timeout_seconds: float = 3600.0
    verify_onchain: bool = True
    legacy_proof_compat: bool = False
    legacy_settlement_compat: bool = False
    required_finality: str = "ACCEPTED_ON_L2"
    strict_execution: bool = False
    allow_simulated_execution: bool = True

    @classmethod
    def from_settings(cls, settings: Any) -> "PaymentPolicy":
        """The policy of ``settings.Settings``, for whoever starts payments."""
        return cls(
            first_interval_seconds=settings.x402_finality_first_interval_seconds,
            backoff=settings.x402_finality_backoff,
            max_interval_seconds=settings.x402_finality_max_interval_seconds,
            timeout_seconds=settings.x402_settlement_timeout_seconds,
            verify_onchain=settings.x402_verify_onchain_settlement,
            legacy_proof_compat=settings.x402_legacy_proof_compat,
            legacy_settlement_compat=settings.x402_legacy_settlement_compat,
            required_finality=str(settings.x402_required_finality),
            strict_execution=settings.marketplace_strict_onchain_execution,
            allow_simulated_execution=bool(settings.starkzap_allow_simulated_execution),
        )


class RunOrder(Model):
    """A paid (or free) run to execute once its payment settles."""

    run_id: str
    agent_id: str
    action: str
    params: dict[str, Any] = Field(default_factory=dict)
    operator_wallet: str


class ExecutionResult(Model):
    """What the executor did; ``simulated`` runs say why they were simulated."""

    tx_hashes: list[str]
    receipt: dict[str, Any] = Field(default_factory=dict)
    simulated: bool = False
    fallback_reason: str | None = None


class PaymentInput(Model):
    """Start input of a payment workflow, id ``pay_<replayKey>``."""

    challenge: Challenge
    payment: PaymentPayload
    run: RunOrder | None = None
    policy: PaymentPolicy = Field(default_factory=PaymentPolicy)
    resume: "FinalityWait | None" = None


class SettleRequest(Model):
    """Update argument of ``settle`` and ``pay_and_run``: the payment presented."""

    challenge: Challenge
    payment: PaymentPayload


class CheckRecord(Model):
    """One receipt check as the status query shows it."""

    at: datetime
    outcome: ReceiptOutcome
    finality: str | None = None
    detail: str = ""


class PaymentProgress(Model):
    """Answer of the ``status`` query: where the payment and its run stand."""

    payment_ref: str
    stage: Stage
    payment_state: Literal["pending", "settled", "rejected"] | None = None
    reason_code: ReasonCode | None = None
    detail: str = ""
    settlement_tx_hash: str | None = None
    run_id: str | None = None
    run_state: str | None = None
    checks: list[CheckRecord] = Field(default_factory=list)
    check_count: int = 0
    next_check_at: datetime | None = None
    decision: SettleResponse | None = None
    execution: ExecutionResult | None = None


class PayAndRunRequest(Model):
    """Update argument of ``pay_and_run``: the payment and the run it pays for."""

    challenge: Challenge
    payment: PaymentPayload
    run_id: str


class ExecutionRequest(Model):
    """One execution of a run, with the execution rules of its payment."""

    order: RunOrder
    strict: bool = False
    allow_simulated: bool = True


class ChallengeCheckInput(Model):
    """A presented challenge and the payment naming it, for the signing activity."""

    challenge: Challenge
    payment: PaymentPayload


class ClaimInput(Model):
    """Claim of a replay key, its challenge and its settlement transaction."""

    challenge: Challenge
    payment: PaymentPayload
    settlement_tx_hash: str | None
    run_id: str | None = None
    legacy_proof: bool = False


class ReplayCheckInput(Model):
    """A presented payment whose replay key may have been seen before."""

    payment: PaymentPayload


class ClaimResult(Model):
    """What the claim found: a new claim, this payment again, or a conflict."""

    outcome: Literal["unseen", "claimed", "repeat", "conflict"]
    payment_state: Literal["pending", "settled", "rejected"] | None = None
    reason_code: ReasonCode | None = None
    detail: str = ""
    settlement_tx_hash: str | None = None
    receipt: dict[str, Any] | None = None


class PaymentTransition(Model):
    """A pending payment settled or rejected, with its run, in one transaction.

    Settling also queues the paid run; rejecting fails it, or cancels it when an
    operator cancelled the payment.
    """

    replay_key: str
    run_id: str | None = None
    state: Literal["settled", "rejected"]
    signal: Signal | None = None
    reason_code: ReasonCode | None = None
    detail: str = ""
    cancelled: bool = False
    settlement_tx_hash: str | None = None
    finality: str | None = None
    receipt: dict[str, Any] | None = None
    evidence: dict[str, Any] | None = None
    waited_seconds: float | None = None


class SignalRecord(Model):
    """One signal for the event log and Prometheus, outside a state transition."""

    signal: str
    payment_ref: str | None = None
    run_id: str | None = None
    reason: str | None = None


class RunTransition(Model):
    """A run moved to its next state, with what the execution produced."""

    run_id: str
    to_status: Literal["queued", "running", "completed", "failed", "cancelled"]
    result: dict[str, Any] | None = None
    error: str | None = None
    execution_tx_hashes: list[str] | None = None
    execution_seconds: float | None = None


class FinalityWait(Model):
    """Where a finality wait stands, carried over a continue-as-new."""

    decision: SettleResponse
    started_at: datetime
    next_interval_seconds: float
    check_count: int = 0
    claim_settlement_tx_hash: str | None = None
    answered: bool = False


class RunInput(Model):
    """Start input of a run without payment, workflow id ``run_<runId>``."""

    run: RunOrder
    policy: PaymentPolicy = Field(default_factory=PaymentPolicy)


class RunOutcome(Model):
    """How a run ended."""

    run_id: str
    run_state: str
    execution: ExecutionResult | None = None
    error: str | None = None


class PaymentOutcome(Model):
    """How a payment workflow ended: the payment's answer and its run's end."""

    decision: SettleResponse
    run: RunOutcome | None = None


PaymentInput.model_rebuild()
