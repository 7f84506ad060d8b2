"""Python client of the payment rails: pays 402 challenges and waits for paid runs."""

from client.client import AsyncX402Client, X402Client
from client.errors import (
    ApiError,
    InvalidResponse,
    PaymentRefused,
    RateLimited,
    RunTimeout,
    ServiceUnavailable,
    TransportError,
    X402ClientError,
)
from client.proof import Payment, ProofProvider, SyncProofProvider, build_payment

__all__ = [
    "ApiError",
    "AsyncX402Client",
    "InvalidResponse",
    "Payment",
    "PaymentRefused",
    "ProofProvider",
    "RateLimited",
    "RunTimeout",
    "ServiceUnavailable",
    "SyncProofProvider",
    "TransportError",
    "X402Client",
    "X402ClientError",
    "build_payment",
]
