"""The payment policy a starter fixes from the settings."""

from settings import load_settings
from workflows.models import PaymentPolicy


def test_policy_from_settings_carries_every_payment_rule() -> None:
    settings = load_settings(
        x402_facilitator_secret="a-real-secret-for-this-test",
        x402_finality_first_interval_seconds=3,
        x402_finality_backoff=1.5,
        x402_finality_max_interval_seconds=120,
        x402_settlement_timeout_seconds=900,
        x402_verify_onchain_settlement=False,
        x402_legacy_proof_compat=True,
        x402_legacy_settlement_compat=True,
        x402_required_finality="ACCEPTED_ON_L1",
        marketplace_strict_onchain_execution=True,
    )

    policy = PaymentPolicy.from_settings(settings)

    assert policy == PaymentPolicy(
        first_interval_seconds=3,
        backoff=1.5,
        max_interval_seconds=120,
        timeout_seconds=900,
        verify_onchain=False,
        legacy_proof_compat=True,
        legacy_settlement_compat=True,
        required_finality="ACCEPTED_ON_L1",
        strict_execution=True,
        allow_simulated_execution=False,
    )


def test_policy_defaults_match_the_settings_defaults() -> None:
    settings = load_settings(x402_facilitator_secret="a-real-secret-for-this-test")

    policy = PaymentPolicy.from_settings(settings)

    assert policy == PaymentPolicy()
