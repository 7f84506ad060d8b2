"""Errors of the Postgres store, each converted from asyncpg where it enters.

    StoreError
    ├── StoreUnavailable           Postgres unreachable or the connection lost; retry
    ├── MigrationError             a migration file changed after it was applied
    ├── NotFound                   the row to change does not exist
    ├── InvalidTransition          the row is in a state that forbids the change
    └── ConflictError              a unique fact is already claimed by another row
        ├── ReplayKeyTaken           REPLAY_DETECTED: same replay key, other payload
        ├── ChallengeAlreadyUsed     REPLAY_DETECTED: challenge backs another payment
        ├── SettlementTxAlreadyUsed  REPLAY_DETECTED: tx pays for another payment
        ├── PaymentAlreadyAttached   REPLAY_DETECTED: payment already pays another run
        ├── RunAlreadyPaid           the run is already paid by another payment
        ├── DuplicateRun             run id or (operator wallet, idempotency key) taken
        └── IdempotencyConflict
            ├── IdempotencyKeyReused   IDEMPOTENCY_KEY_REUSED: same key, other body
            └── IdempotencyInFlight    IDEMPOTENCY_IN_FLIGHT: first request running

Only StoreUnavailable is worth retrying: every other error describes the data, and
the same call would fail the same way again.
"""

from protocol.models import ReasonCode


class StoreError(Exception):
    """Base of the store's errors; ``reason`` is a protocol or API code, if any."""

    reason: str | None = None
    retryable: bool = False

    def __init__(self, message: str, *, payment_ref: str | None = None) -> None:
        super().__init__(message)
        self.payment_ref = payment_ref


class StoreUnavailable(StoreError):
    """Postgres could not be reached, or the connection broke mid-operation."""

    retryable = True


class MigrationError(StoreError):
    """The migrations on disk disagree with those recorded as applied."""


class NotFound(StoreError):
    """The row a change names does not exist."""


class InvalidTransition(StoreError):
    """The row's current state does not allow the requested change."""


class ConflictError(StoreError):
    """A unique fact (key, challenge, transaction) already belongs to another row."""


class ReplayKeyTaken(ConflictError):
    """The replay key was already claimed by a different payment payload."""

    reason = ReasonCode.REPLAY_DETECTED


class ChallengeAlreadyUsed(ConflictError):
    """The challenge already backs a payment under another replay key."""

    reason = ReasonCode.REPLAY_DETECTED


class SettlementTxAlreadyUsed(ConflictError):
    """The settlement transaction already pays for another replay key."""

    reason = ReasonCode.REPLAY_DETECTED


class PaymentAlreadyAttached(ConflictError):
    """The payment already pays for another run."""

    reason = ReasonCode.REPLAY_DETECTED


class RunAlreadyPaid(ConflictError):
    """The run is already attached to a different payment."""


class DuplicateRun(ConflictError):
    """A run with this id, or this operator's idempotency key, already exists."""


class IdempotencyConflict(ConflictError):
    """An Idempotency-Key cannot be used for this request right now."""


class IdempotencyKeyReused(IdempotencyConflict):
    """The key was first used with a different request body."""

    reason = "IDEMPOTENCY_KEY_REUSED"


class IdempotencyInFlight(IdempotencyConflict):
    """The first request with this key has not finished yet."""

    reason = "IDEMPOTENCY_IN_FLIGHT"
