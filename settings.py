"""Settings of the payment rails, read from the environment and checked at start."""

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Values that ship in examples and must never guard real money.
PLACEHOLDER_SECRETS = frozenset({"", "replace-me", "dev-only-secret-change-me"})

# Known limitation: this public Sepolia endpoint cannot be reached from the build
# machines, so only the local JSON-RPC node is exercised by the tests.
DEFAULT_RPC_URL = "https://api.cartridge.gg/x/starknet/sepolia"


class Finality(StrEnum):
    """How final a settlement transaction must be before a run may execute."""

    ACCEPTED_ON_L2 = "ACCEPTED_ON_L2"
    ACCEPTED_ON_L1 = "ACCEPTED_ON_L1"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Settings(BaseSettings):
    """Every environment variable of the design, with its default."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    # Protocol and its secrets.
    x402_facilitator_secret: SecretStr
    x402_facilitator_secret_previous: SecretStr | None = None
    x402_reconcile_secret: SecretStr | None = None
    x402_payment_expiry_seconds: int = Field(default=300, ge=10, le=86_400)
    x402_max_header_bytes: int = Field(default=32 * 1024, ge=1024, le=1024 * 1024)
    x402_facilitator_url: AnyHttpUrl = AnyHttpUrl(
        "http://localhost:8000/api/v1/marketplace/payments/x402"
    )
    x402_network: Literal["sepolia", "mainnet"] = "sepolia"
    x402_default_token: str = Field(default="STRK", min_length=1)
    x402_default_min_amount: str = Field(
        default="1000000000000000000", pattern=r"^[0-9]+$"
    )
    x402_token_addresses: dict[str, str] = Field(default_factory=dict)

    # Settlement.
    x402_verify_onchain_settlement: bool = True
    x402_legacy_proof_compat: bool = False
    x402_legacy_settlement_compat: bool = False
    x402_required_finality: Finality = Finality.ACCEPTED_ON_L2
    x402_settlement_timeout_seconds: int = Field(default=3600, ge=1)
    x402_finality_first_interval_seconds: float = Field(default=2.0, gt=0)
    x402_finality_backoff: float = Field(default=2.0, ge=1.0)
    x402_finality_max_interval_seconds: float = Field(default=300.0, gt=0)
    starknet_rpc_url: AnyHttpUrl = AnyHttpUrl(DEFAULT_RPC_URL)
    starknet_fallback_rpc_urls: Annotated[list[AnyHttpUrl], NoDecode] = Field(
        default_factory=list
    )

    # Run execution.
    starkzap_executor_url: AnyHttpUrl | None = None
    starkzap_executor_api_key: SecretStr | None = None
    starkzap_allow_simulated_execution: bool | None = None
    marketplace_strict_onchain_execution: bool = False

    # Infrastructure.
    database_url: SecretStr | None = None
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "x402-payments"
    x402_metrics_port: int = Field(default=9464, ge=0, le=65535)

    # HTTP API.
    x402_rate_limit_per_minute: int = Field(default=120, ge=1)
    x402_trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    x402_run_wait_seconds: float = Field(default=10.0, ge=0, le=120)

    @field_validator(
        "x402_facilitator_secret",
        "x402_facilitator_secret_previous",
        "x402_reconcile_secret",
    )
    @classmethod
    def _refuse_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if (
            value is not None
            and value.get_secret_value().strip() in PLACEHOLDER_SECRETS
        ):
            raise ValueError("is empty or a placeholder; set a real secret")
        return value

    @field_validator("x402_facilitator_secret_previous", mode="before")
    @classmethod
    def _empty_previous_means_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "starknet_fallback_rpc_urls", "x402_trusted_proxies", mode="before"
    )
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _check_execution_mode(self) -> "Settings":
        strict = self.marketplace_strict_onchain_execution
        if self.starkzap_allow_simulated_execution is None:
            self.starkzap_allow_simulated_execution = not strict
        elif strict and self.starkzap_allow_simulated_execution:
            raise ValueError(
                "STARKZAP_ALLOW_SIMULATED_EXECUTION=true contradicts "
                "MARKETPLACE_STRICT_ONCHAIN_EXECUTION=true; strict mode never simulates"
            )
        if self.starkzap_executor_url and not self.starkzap_executor_api_key:
            raise ValueError(
                "STARKZAP_EXECUTOR_URL is set without STARKZAP_EXECUTOR_API_KEY"
            )
        return self

    @property
    def facilitator_secrets(self) -> tuple[str, ...]:
        """Secrets that may have signed a live challenge: current, then previous."""
        current = self.x402_facilitator_secret.get_secret_value()
        previous = self.x402_facilitator_secret_previous
        return (
            (current,) if previous is None else (current, previous.get_secret_value())
        )

    @property
    def rpc_urls(self) -> list[str]:
        """The primary Starknet RPC URL, then each fallback, in the order to try."""
        return [
            str(url)
            for url in (self.starknet_rpc_url, *self.starknet_fallback_rpc_urls)
        ]


def load_settings(**overrides: Any) -> Settings:
    """Read the environment; raise SettingsError naming every bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        variable = "_".join(str(part) for part in item["loc"]).upper()
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "is required but not set"
        problems.append(f"{variable}: {message}" if variable else message)
    return "invalid settings: " + "; ".join(problems)
