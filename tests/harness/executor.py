"""A local Starkzap executor that executes each idempotency key at most once."""

import asyncio
import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Self

import pytest
from aiohttp import web

from tests.harness.http_server import LocalServer

EXECUTE_PATH = "/v1/execute"
API_KEY = "test-starkzap-key"
FELT_BOUND = 2**251


@dataclass(frozen=True)
class ExecutorCall:
    """One request as the executor saw it, and what it answered."""

    idempotency_key: str | None
    headers: dict[str, str]
    body: Any
    received_at: float  # time.monotonic(), to measure a client's retry backoff
    status: int
    outcome: str


def tx_hash_for(idempotency_key: str) -> str:
    """The transaction hash the executor reports for a key, the same every time."""
    digest = hashlib.sha256(f"starkzap:{idempotency_key}".encode()).digest()
    return hex(int.from_bytes(digest, "big") % FELT_BOUND)


class StarkzapExecutor:
    """Answers ``POST EXECUTE_PATH``; a repeated idempotency key replays its answer.

    Outcomes recorded per call: ``executed``, ``replayed``, ``injected_failure``,
    ``unauthorized``, ``bad_request``. ``camel_case`` spells ``txHashes`` in
    answers executed while it is set; a replay keeps its original spelling.
    """

    def __init__(self, *, api_key: str = API_KEY, camel_case: bool = False) -> None:
        self.api_key = api_key
        self.camel_case = camel_case
        self.calls: list[ExecutorCall] = []
        self.executions: list[str] = []
        self._answers: dict[str, dict[str, Any]] = {}
        self._failures: list[int] = []
        self._delay = 0.0
        self._lock = threading.Lock()

        app = web.Application()
        app.router.add_post(EXECUTE_PATH, self._execute)
        self._server = LocalServer(app, name="starkzap-executor")

    @property
    def url(self) -> str:
        """The base URL; the client appends ``EXECUTE_PATH``."""
        return f"http://127.0.0.1:{self._server.port}"

    def start(self) -> Self:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def fail_next(self, n: int, status: int = 503) -> None:
        """Answer the next ``n`` calls with ``status``, before any other check."""
        with self._lock:
            self._failures.extend([status] * n)

    def slow(self, seconds: float) -> None:
        """Delay every later answer by ``seconds`` (0 restores speed)."""
        self._delay = seconds

    def executions_for(self, idempotency_key: str) -> int:
        with self._lock:
            return self.executions.count(idempotency_key)

    def calls_for(self, idempotency_key: str) -> list[ExecutorCall]:
        with self._lock:
            return [c for c in self.calls if c.idempotency_key == idempotency_key]

    async def _execute(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        key = request.headers.get("Idempotency-Key")

        # Decide before sleeping, so a concurrent duplicate still replays.
        with self._lock:
            status, outcome, answer = self._decide(request, key, body)
            self.calls.append(
                ExecutorCall(
                    idempotency_key=key,
                    headers=dict(request.headers),
                    body=body,
                    received_at=time.monotonic(),
                    status=status,
                    outcome=outcome,
                )
            )

        await asyncio.sleep(self._delay)
        return web.json_response(answer, status=status)

    def _decide(
        self, request: web.Request, key: str | None, body: Any
    ) -> tuple[int, str, dict[str, Any]]:
        if self._failures:
            status = self._failures.pop(0)
            return status, "injected_failure", _error("UNAVAILABLE", "injected")
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, "unauthorized", _error("UNAUTHORIZED", "bad API key")
        if not key:
            return 400, "bad_request", _error("BAD_REQUEST", "Idempotency-Key missing")
        if not isinstance(body, dict):
            return 400, "bad_request", _error("BAD_REQUEST", "body is not an object")

        if key in self._answers:
            return 200, "replayed", self._answers[key]
        self.executions.append(key)
        self._answers[key] = self._answer(key, body)
        return 200, "executed", self._answers[key]

    def _answer(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        tx_hash = tx_hash_for(key)
        receipt = {
            "run_id": body.get("run_id"),
            "transaction_hash": tx_hash,
            "execution_status": "SUCCEEDED",
        }
        # Some executor builds answer in camelCase; clients accept both spellings.
        hashes_field = "txHashes" if self.camel_case else "tx_hashes"
        return {hashes_field: [tx_hash], "receipt": receipt}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


@pytest.fixture
def starkzap_executor() -> Iterator[StarkzapExecutor]:
    """A started executor expecting ``API_KEY``, fresh for each test."""
    with StarkzapExecutor() as executor:
        yield executor
