"""Row models of the payment store, and the inputs from which rows are created."""

import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, field_validator

from protocol.models import payment_ref_for
from protocol.signals import Signal
from store.errors import IdempotencyInFlight, IdempotencyKeyReused

U256_MAX = 2**256 - 1
_TX_HASH = re.compile(r"0[xX][0-9a-fA-F]{1,64}")


def normalize_tx_hash(tx_hash: str) -> str:
    """Lower-case ``0x`` hex without leading zeros: one spelling per transaction.

    The store normalizes every hash it is given, so ``0x00AB`` and ``0xab`` claim
    the same transaction; the table refuses any other spelling.
    """
    if not _TX_HASH.fullmatch(tx_hash):
        raise ValueError(f"not a 0x hex transaction hash: {tx_hash!r}")
    return hex(int(tx_hash, 16))


def new_run_id() -> str:
    """A fresh run id, ``run_`` and 32 hex digits."""
    return f"run_{uuid.uuid4().hex}"


# Must match: the check constraints of store/migrations/0001_initial.sql.
class PaymentStatus(StrEnum):
    PENDING = "pending"
    SETTLED = "settled"
    REJECTED = "rejected"


class RunStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class AgentType(StrEnum):
    STAKING_STEWARD = "staking_steward"
    TREASURY_DISPATCHER = "treasury_dispatcher"
    SWAP_RUNNER = "swap_runner"


class IdempotencyState(StrEnum):
    IN_FLIGHT = "in_flight"
    DONE = "done"


class ReservationOutcome(StrEnum):
    NEW = "new"  # reserved now: do the work, then complete the key
    REPLAY = "replay"  # answered before, same body: send the stored answer again
    IN_FLIGHT = "in_flight"  # the first request is still working
    REUSED = "reused"  # the key was first used with a different body


class EventKind(StrEnum):
    """Protocol signals are counted; operator actions and transitions are audit."""

    SIGNAL = "signal"
    OPERATOR = "operator"
    TRANSITION = "transition"


class OperatorSignal(StrEnum):
    RETRY = "operator_retry"
    CANCEL = "operator_cancel"


# The store logs these itself, in the statement that makes the change.
TRANSITION_SIGNALS = frozenset(
    [f"payment_{status}" for status in PaymentStatus]
    + [f"run_{status}" for status in RunStatus]
)
EVENT_SIGNALS = frozenset(Signal) | frozenset(OperatorSignal) | TRANSITION_SIGNALS


class StoreModel(BaseModel):
    """Immutable; built from an asyncpg row with ``from_row``."""

    model_config = ConfigDict(frozen=True)

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Self:
        return cls.model_validate(dict(row))


class PaymentClaim(StoreModel):
    """What the settle stage knows when it claims a replay key."""

    replay_key: str = Field(min_length=1)
    challenge_id: str = Field(min_length=1)
    proof_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    payer: str
    recipient: str
    token: str
    amount: int = Field(ge=0, le=U256_MAX)
    network: str
    settlement_tx_hash: str | None = None
    evidence: dict[str, Any] | None = None

    @field_validator("settlement_tx_hash")
    @classmethod
    def _normalize(cls, value: str | None) -> str | None:
        return None if value is None else normalize_tx_hash(value)

    @property
    def payment_ref(self) -> str:
        return payment_ref_for(self.replay_key)


class PaymentRecord(StoreModel):
    """A row of ``x402_payments``."""

    replay_key: str
    payment_ref: str
    challenge_id: str
    settlement_tx_hash: str | None
    status: PaymentStatus
    reason_code: str | None
    reason_detail: str | None
    payer: str
    recipient: str
    token: str
    amount: int
    network: str
    proof_digest: str
    finality: str | None
    receipt: dict[str, Any] | None
    evidence: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    settled_at: datetime | None


class ClaimOutcome(StoreModel):
    """The claimed payment; ``repeat`` when this exact payment was claimed before."""

    payment: PaymentRecord
    repeat: bool


class AgentSpec(StoreModel):
    """An agent of the marketplace, what it charges and where the money goes."""

    agent_id: str = Field(min_length=1)
    agent_type: AgentType
    service_wallet: str
    price_amount: int = Field(ge=0, le=U256_MAX)
    price_token: str
    tongo_recipient: str | None = None
    network: str


class AgentRecord(AgentSpec):
    """A row of ``agents``."""

    created_at: datetime
    updated_at: datetime


class NewRun(StoreModel):
    """A run as requested; billable runs start waiting for their payment."""

    run_id: str = Field(default_factory=new_run_id)
    agent_id: str
    operator_wallet: str
    action: str
    params: dict[str, Any] = Field(default_factory=dict)
    billable: bool
    idempotency_key: str | None = None
    request_hash: str | None = None

    @property
    def initial_status(self) -> RunStatus:
        return RunStatus.PENDING_PAYMENT if self.billable else RunStatus.QUEUED


class RunRecord(StoreModel):
    """A row of ``agent_runs``."""

    run_id: str
    agent_id: str
    operator_wallet: str
    action: str
    params: dict[str, Any]
    billable: bool
    status: RunStatus
    payment_ref: str | None
    payment_evidence: dict[str, Any] | None
    execution_tx_hashes: list[str]
    result: dict[str, Any] | None
    error: str | None
    idempotency_key: str | None
    request_hash: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunPage(StoreModel):
    """One page of runs, newest first; pass ``next_before`` to get the next."""

    runs: list[RunRecord]
    next_before: str | None


class ApiKeyRecord(StoreModel):
    """A row of ``api_keys``, without the key's hash."""

    key_id: str
    wallet: str
    label: str | None
    is_admin: bool
    created_at: datetime
    revoked_at: datetime | None


class IdempotencyRecord(StoreModel):
    """A row of ``idempotency_keys``: a reservation, then the answer it produced."""

    actor: str
    key: str
    request_hash: str
    state: IdempotencyState
    response_status: int | None
    response_body: Any
    run_id: str | None
    created_at: datetime
    updated_at: datetime


class Reservation(StoreModel):
    """What reserving an Idempotency-Key found, with the key's row."""

    outcome: ReservationOutcome
    record: IdempotencyRecord

    def raise_for_conflict(self) -> None:
        """Raise the API's 409 error for an in-flight or reused key."""
        if self.outcome is ReservationOutcome.IN_FLIGHT:
            raise IdempotencyInFlight(f"request with key {self.record.key} in flight")
        if self.outcome is ReservationOutcome.REUSED:
            raise IdempotencyKeyReused(
                f"key {self.record.key} was first used with a different request body"
            )


class EventRecord(StoreModel):
    """A row of the append-only ``x402_payment_events``."""

    event_id: int
    signal: str
    kind: EventKind
    payment_ref: str | None
    run_id: str | None
    reason: str | None
    detail: Any
    created_at: datetime
