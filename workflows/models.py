"""Data that crosses between the payment workflow, its activities and the API."""

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol.models import Challenge, PaymentPayload, ReasonCode, SettleResponse


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
    legacy_settlement_compat: bool = False
    required_finality: str = "ACCEPTED_ON_L2"
    strict_execution: bool = False
    allow_simulated_execution: bool = True


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


class PaymentStatus(Model):
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
