"""Executor activity: ask Starkzap to execute a run, keyed by the run id."""

import asyncio
import hashlib
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.models import ExecutionRequest, ExecutionResult, RunOrder

# Must match: the Starkzap executor's execute endpoint, below STARKZAP_EXECUTOR_URL.
EXECUTE_PATH = "/v1/execute"
EXECUTOR_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
NOT_CONFIGURED = "EXECUTOR_NOT_CONFIGURED"
REJECTED = "EXECUTOR_REJECTED"
BAD_RESPONSE = "EXECUTOR_BAD_RESPONSE"
UNAVAILABLE = "EXECUTOR_UNAVAILABLE"

FELT_BOUND = 2**251
# Heartbeats let the server notice a dead worker in seconds, not after the
# activity's whole start-to-close timeout. Must stay below the workflow's
# heartbeat timeout for execute_run (workflows/execution.py).
HEARTBEAT_EVERY_SECONDS = 2.0

# Statuses that say the request itself is wrong: retrying cannot help.
_FINAL_STATUSES = frozenset({400, 401, 403, 404, 405, 409, 410, 413, 422})


class ExecutionActivities:
    """Calls to the configured Starkzap executor over one pooled HTTP client."""

    def __init__(self, executor_url: str | None, api_key: str | None) -> None:
        self._url = executor_url.rstrip("/") + EXECUTE_PATH if executor_url else None
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http: httpx.AsyncClient | None = None

    @activity.defn(name="execute_run")
    async def execute_run(self, request: ExecutionRequest) -> ExecutionResult:
        """Execute a run once: the run id is the executor's idempotency key.

        A retry after a lost answer gets the first execution's answer back.
        Without an executor, a non-strict payment gets a simulated execution,
        flagged as such; strict mode fails instead. Final errors (no executor,
        request refused, unreadable answer) are non-retryable; an unreachable
        or failing executor is retried.
        """
        order = request.order
        if self._url is None:
            return _simulate_or_refuse(request)

        response = await self._post_with_heartbeats(order)
        result = _parse(response, order.run_id)
        activity.logger.info(
            "run executed run_id=%s tx_hashes=%s", order.run_id, result.tx_hashes
        )
        return result

    async def close(self) -> None:
        """Close the pooled HTTP client (the worker calls this on shutdown)."""
        if self._http is not None:
            await self._http.aclose()

    async def _post_with_heartbeats(self, order: RunOrder) -> httpx.Response:
        post = asyncio.ensure_future(self._post(order))
        try:
            while True:
                done, _ = await asyncio.wait({post}, timeout=HEARTBEAT_EVERY_SECONDS)
                if done:
                    return post.result()
                activity.heartbeat()
        finally:
            post.cancel()

    async def _post(self, order: RunOrder) -> httpx.Response:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=EXECUTOR_TIMEOUT)
        headers = self._headers | {"Idempotency-Key": order.run_id}
        try:
            response = await self._http.post(
                self._url or "", json=order.model_dump(mode="json"), headers=headers
            )
        except httpx.HTTPError as error:
            raise ApplicationError(
                f"executor unreachable: {type(error).__name__}", type=UNAVAILABLE
            ) from error

        if response.status_code in _FINAL_STATUSES:
            raise ApplicationError(
                f"executor refused the run with HTTP {response.status_code}",
                type=REJECTED,
                non_retryable=True,
            )
        if response.status_code >= 300:
            raise ApplicationError(
                f"executor answered HTTP {response.status_code}", type=UNAVAILABLE
            )
        return response


def _simulate_or_refuse(request: ExecutionRequest) -> ExecutionResult:
    """A deterministic stand-in execution, only where the payment's rules allow it."""
    run_id = request.order.run_id
    if request.strict or not request.allow_simulated:
        setting = (
            "MARKETPLACE_STRICT_ONCHAIN_EXECUTION=true never simulates"
            if request.strict
            else "STARKZAP_ALLOW_SIMULATED_EXECUTION=false"
        )
        raise ApplicationError(
            f"STARKZAP_EXECUTOR_URL is not set and {setting}",
            type=NOT_CONFIGURED,
            non_retryable=True,
        )

    digest = hashlib.sha256(f"simulated:{run_id}".encode()).digest()
    tx_hash = hex(int.from_bytes(digest, "big") % FELT_BOUND)
    activity.logger.warning("run simulated run_id=%s tx_hash=%s", run_id, tx_hash)
    return ExecutionResult(
        tx_hashes=[tx_hash],
        receipt={"run_id": run_id, "transaction_hash": tx_hash, "simulated": True},
        simulated=True,
        fallback_reason="no Starkzap executor configured (STARKZAP_EXECUTOR_URL)",
    )


def _parse(response: httpx.Response, run_id: str) -> ExecutionResult:
    try:
        body: Any = response.json()
        hashes = body.get("tx_hashes", body.get("txHashes"))
        receipt = body.get("receipt") or {}
        if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
            raise ValueError("tx_hashes is not a list of strings")
        if not isinstance(receipt, dict):
            raise ValueError("receipt is not an object")
    except (ValueError, AttributeError) as error:
        # The run may have executed: retrying would only read the same answer.
        raise ApplicationError(
            f"executor answer for {run_id} is unreadable: {error}",
            type=BAD_RESPONSE,
            non_retryable=True,
        ) from error
    return ExecutionResult(tx_hashes=hashes, receipt=receipt)
