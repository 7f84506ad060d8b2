"""Prometheus metrics of the payment rails: the twelve signals and their timings."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from protocol.models import ReasonCode
from protocol.signals import DESCRIPTIONS, Signal

REGISTRY = CollectorRegistry(auto_describe=True)

# One counter per signal, named after the event it counts (x402_<signal>_total).
SIGNALS: dict[Signal, Counter] = {
    signal: Counter(f"x402_{signal.value}", DESCRIPTIONS[signal], registry=REGISTRY)
    for signal in Signal
}
REJECTIONS = Counter(
    "x402_rejections",
    "Payments refused or failed, by reason code",
    ["reason"],
    registry=REGISTRY,
)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_WAIT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200)

VERIFY_SECONDS = Histogram(
    "x402_verify_seconds",
    "Time to verify a payment payload",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
SETTLE_DECISION_SECONDS = Histogram(
    "x402_settle_decision_seconds",
    "Time from a settle request to its decision",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
FINALITY_WAIT_SECONDS = Histogram(
    "x402_finality_wait_seconds",
    "Time a settlement transaction took to reach the required finality",
    buckets=_WAIT_BUCKETS,
    registry=REGISTRY,
)
RUN_EXECUTION_SECONDS = Histogram(
    "x402_run_execution_seconds",
    "Time the executor took to run a paid run",
    buckets=_WAIT_BUCKETS,
    registry=REGISTRY,
)
OLDEST_PENDING_PAYMENT_AGE = Gauge(
    "x402_oldest_pending_payment_age_seconds",
    "Age of the oldest payment still waiting for settlement",
    registry=REGISTRY,
)


def count_signal(signal: Signal, reason: ReasonCode | None = None) -> None:
    """Count one signal in this process, and its reason code when it has one."""
    SIGNALS[signal].inc()
    if reason is not None:
        REJECTIONS.labels(reason=reason.value).inc()
