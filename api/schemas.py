"""Request and response models of the HTTP API, as OpenAPI documents them."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from protocol.models import Challenge
from store.records import RunRecord

HEX_ADDRESS = r"^0x[0-9a-fA-F]{1,64}$"


class CamelModel(BaseModel):
    """camelCase on the wire, as the protocol's own endpoints spell it."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True
    )


class ChallengeCreate(CamelModel):
    """Terms of a challenge; omitted ones take the configured defaults."""

    recipient: str = Field(pattern=HEX_ADDRESS)
    token: str | None = Field(default=None, min_length=1, max_length=32)
    min_amount: str | None = Field(default=None, pattern=r"^[0-9]{1,78}$")
    network: Literal["sepolia", "mainnet"] | None = None
    tongo_recipient: str | None = Field(default=None, max_length=256)
    context: dict[str, Any] = Field(default_factory=dict)
    ttl_seconds: int | None = Field(default=None, ge=10, le=86_400)


class ChallengePublic(BaseModel):
    challenge: Challenge


class ReconcileSummary(BaseModel):
    """What a reconcile pass did."""

    scanned: int
    retried: int
    started: int
    failed: int


class SignalCounts(BaseModel):
    """The twelve signals, all time and over recent windows, cluster-wide."""

    totals: dict[str, int]
    windows: dict[str, dict[str, int]]


class CheckPublic(CamelModel):
    at: datetime
    outcome: str
    finality: str | None = None
    detail: str = ""


class PaymentPublic(CamelModel):
    """A payment as its reference shows it: row, stage and receipt checks."""

    payment_ref: str
    status: Literal["pending", "settled", "rejected"]
    reason_code: str | None = None
    detail: str | None = None
    tx_hash: str | None = None
    stage: str | None = None
    check_count: int | None = None
    checks: list[CheckPublic] = Field(default_factory=list)
    next_check_at: datetime | None = None
    receipt: dict[str, Any] | None = None
    created_at: datetime
    settled_at: datetime | None = None


class CancelRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class OperatorAnswer(BaseModel):
    payment_ref: str
    signal: Literal["retry", "cancel"]
    delivered: bool


class RunCreate(BaseModel):
    """A run of an agent's action; ``_x402`` carries a payment too large for headers."""

    model_config = ConfigDict(populate_by_name=True)

    agent_id: str = Field(min_length=1, max_length=128)
    action: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)
    x402: dict[str, Any] | None = Field(default=None, alias="_x402")


class RunPublic(BaseModel):
    """A run as its operator sees it."""

    run_id: str
    agent_id: str
    action: str
    params: dict[str, Any]
    status: str
    billable: bool
    payment_ref: str | None
    execution_tx_hashes: list[str]
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, run: RunRecord) -> "RunPublic":
        return cls.model_validate(run.model_dump())


class RunAnswer(BaseModel):
    """A run; ``payment`` while its payment is not settled yet."""

    run: RunPublic
    payment: dict[str, Any] | None = None


class RunList(BaseModel):
    runs: list[RunPublic]
    next_before: str | None


class ErrorBody(BaseModel):
    """The one error shape of every endpoint."""

    error: str
    code: str
    details: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "Invalid request; details name the field",
        401: "Missing or unknown API key",
        429: "Rate limited; details.retry_after in seconds",
        503: "Postgres or Temporal unreachable; details.retry_after in seconds",
    }.items()
}
