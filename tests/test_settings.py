"""Settings come from the environment, with defaults and errors naming the variable."""

import os

import pytest

from settings import Finality, SettingsError, load_settings

SECRET = "a-real-facilitator-secret-value"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings read the process environment; start every test from a known one.
    for name in list(os.environ):
        if name.startswith(("X402_", "STARKZAP_", "STARKNET_", "TEMPORAL_")):
            monkeypatch.delenv(name)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("MARKETPLACE_STRICT_ONCHAIN_EXECUTION", raising=False)


def test_defaults_follow_the_design(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X402_FACILITATOR_SECRET", SECRET)

    settings = load_settings()

    assert settings.x402_payment_expiry_seconds == 300
    assert settings.x402_verify_onchain_settlement is True
    assert settings.x402_legacy_proof_compat is False
    assert settings.x402_legacy_settlement_compat is False
    assert settings.marketplace_strict_onchain_execution is False
    assert settings.starkzap_allow_simulated_execution is True
    assert settings.x402_required_finality is Finality.ACCEPTED_ON_L2
    assert settings.x402_max_header_bytes == 32 * 1024
    assert settings.facilitator_secrets == (SECRET,)


def test_missing_secret_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="X402_FACILITATOR_SECRET: is required"):
        load_settings()


@pytest.mark.parametrize("placeholder", ["replace-me", "dev-only-secret-change-me", ""])
def test_placeholder_secrets_are_refused(
    monkeypatch: pytest.MonkeyPatch, placeholder: str
) -> None:
    monkeypatch.setenv("X402_FACILITATOR_SECRET", placeholder)

    with pytest.raises(SettingsError, match="X402_FACILITATOR_SECRET: .*placeholder"):
        load_settings()


def test_malformed_number_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X402_FACILITATOR_SECRET", SECRET)
    monkeypatch.setenv("X402_SETTLEMENT_TIMEOUT_SECONDS", "soon")

    with pytest.raises(SettingsError, match="X402_SETTLEMENT_TIMEOUT_SECONDS"):
        load_settings()


def test_previous_secret_joins_the_accepted_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("X402_FACILITATOR_SECRET", SECRET)
    monkeypatch.setenv("X402_FACILITATOR_SECRET_PREVIOUS", "the-secret-before")

    assert load_settings().facilitator_secrets == (SECRET, "the-secret-before")


def test_fallback_rpc_urls_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X402_FACILITATOR_SECRET", SECRET)
    monkeypatch.setenv("STARKNET_RPC_URL", "http://127.0.0.1:9545/rpc")
    monkeypatch.setenv(
        "STARKNET_FALLBACK_RPC_URLS", "http://127.0.0.1:9546, http://h:1"
    )

    urls = load_settings().rpc_urls

    assert urls == [
        "http://127.0.0.1:9545/rpc",
        "http://127.0.0.1:9546/",
        "http://h:1/",
    ]


def test_strict_execution_refuses_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X402_FACILITATOR_SECRET", SECRET)
    monkeypatch.setenv("MARKETPLACE_STRICT_ONCHAIN_EXECUTION", "true")
    monkeypatch.setenv("STARKZAP_ALLOW_SIMULATED_EXECUTION", "true")

    with pytest.raises(SettingsError, match="strict mode never simulates"):
        load_settings()


def test_strict_execution_defaults_to_no_simulation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("X402_FACILITATOR_SECRET", SECRET)
    monkeypatch.setenv("MARKETPLACE_STRICT_ONCHAIN_EXECUTION", "true")

    assert load_settings().starkzap_allow_simulated_execution is False


def test_secrets_never_appear_in_the_settings_repr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("X402_FACILITATOR_SECRET", SECRET)
    monkeypatch.setenv("X402_RECONCILE_SECRET", "reconcile-secret-value")

    text = repr(load_settings())

    assert SECRET not in text and "reconcile-secret-value" not in text


def test_unknown_finality_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X402_FACILITATOR_SECRET", SECRET)
    monkeypatch.setenv("X402_REQUIRED_FINALITY", "PRE_CONFIRMED")

    with pytest.raises(SettingsError, match="X402_REQUIRED_FINALITY"):
        load_settings()
