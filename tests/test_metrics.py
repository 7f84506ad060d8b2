"""The twelve signals are exposed as Prometheus counters with reason labels."""

from prometheus_client import generate_latest

from metrics import REGISTRY, count_signal
from protocol.models import ReasonCode
from protocol.signals import Signal


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_every_signal_is_exposed_as_a_counter() -> None:
    text = generate_latest(REGISTRY).decode()

    for signal in Signal:
        assert f"x402_{signal.value}_total " in text


def test_counting_a_rejection_counts_its_reason() -> None:
    before = _sample("x402_verify_rejected_total")
    before_reason = _sample("x402_rejections_total", {"reason": "EXPIRED_PAYMENT"})

    count_signal(Signal.VERIFY_REJECTED, ReasonCode.EXPIRED_PAYMENT)

    assert _sample("x402_verify_rejected_total") == before + 1
    after_reason = _sample("x402_rejections_total", {"reason": "EXPIRED_PAYMENT"})
    assert after_reason == before_reason + 1
