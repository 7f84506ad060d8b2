"""Errors of the x402 client, each converted from httpx or an answer where it enters.

    X402ClientError
    ├── TransportError        no answer: connection, timeout or protocol error (httpx)
    ├── InvalidResponse       an answer outside the API's contract (not JSON, no run)
    ├── PaymentRefused        402 with a reason code: the presented payment was refused
    ├── RunTimeout            the run did not finish within the client's wait
    └── ApiError              any other error answer, with the API's code
        ├── RateLimited         429, with retry_after
        └── ServiceUnavailable  503, with retry_after

PaymentRefused is final: the same payment presented again is refused again, and a
new payment is the caller's decision, never the client's. RunTimeout leaves a run
that may still finish; read it later with ``get_run``.
"""

from typing import Any


class X402ClientError(Exception):
    """Base of every error the client raises."""


class TransportError(X402ClientError):
    """The request got no HTTP answer; the httpx error is the ``__cause__``."""


class InvalidResponse(X402ClientError):
    """The API answered, but not in the shape its contract promises."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class PaymentRefused(X402ClientError):
    """The API refused the presented payment with a reason code (HTTP 402)."""

    def __init__(
        self,
        code: str | None,
        detail: str,
        *,
        payment_ref: str | None = None,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {detail}" if code else detail)
        self.code = code
        self.detail = detail
        self.payment_ref = payment_ref
        self.details = details or {}
        self.request_id = request_id


class RunTimeout(X402ClientError):
    """The run was still unfinished when the client's wait ran out."""

    def __init__(self, run_id: str, last_status: str | None, waited: float) -> None:
        super().__init__(f"run {run_id} still {last_status} after {waited:g} seconds")
        self.run_id = run_id
        self.last_status = last_status
        self.waited = waited


class ApiError(X402ClientError):
    """An error answer of the API: HTTP status, machine code and message."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(
            f"{status} {code}: {message}" if code else f"{status}: {message}"
        )
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.request_id = request_id


class _RetryLater(ApiError):
    """An answer that says when to try again: ``retry_after`` in seconds."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        *,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(status, code, message, details=details, request_id=request_id)
        self.retry_after = retry_after


class RateLimited(_RetryLater):
    """429: the caller sent too many requests; ``retry_after`` is in seconds."""


class ServiceUnavailable(_RetryLater):
    """503: the API or one of its dependencies is down; ``retry_after`` in seconds."""
