"""The API on uvicorn with a worker behind it, on real Temporal and Postgres."""

import asyncio
import secrets
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import uvicorn
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.execution import ExecutionActivities
from activities.ledger import LedgerActivities
from activities.settlement import SettlementActivities
from activities.signing import SigningActivities
from api.main import create_app
from api.paywall import CHALLENGE_HEADER, PAYMENT_HEADER, run_context
from protocol.models import Challenge, PaymentPayload
from settings import Settings, load_settings
from store.agents import get_agent, upsert_agent
from store.api_keys import create_api_key
from store.pool import connection, create_pool
from store.records import AgentSpec, AgentType
from tests.factories import RECIPIENT, SECRET
from tests.harness.executor import API_KEY, StarkzapExecutor
from tests.harness.starknet_node import StarknetNode
from tests.workflows.rails import pydantic_client
from worker import build_activities
from workflows.payment import PaymentWorkflow
from workflows.run import RunWorkflow

RECONCILE_SECRET = "reconcile-secret-for-tests-0123456789"
OPERATOR_WALLET = "0x5e11e7a1e7b0c5d3a4f1d2c3b4a5968778695a4b3c2d1e0f1a2b3c4d5e6f7a8"
OTHER_WALLET = "0x7a11e7a1e7b0c5d3a4f1d2c3b4a5968778695a4b3c2d1e0f1a2b3c4d5e6f7a9"
PRICE = 100
RUNS = "/api/v1/marketplace/runs"
PAYMENTS = "/api/v1/marketplace/payments/x402"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    """A running API: its URL, keys, agents, and the parts behind it."""

    url: str
    settings: Settings
    api_key: str
    other_key: str
    admin_key: str
    paid_agent: str
    free_agent: str

    def client(self, key: str | None = None, **headers: str) -> httpx.AsyncClient:
        """An HTTP client of the API, authenticated with ``key`` (the operator's)."""
        auth = {"Authorization": f"Bearer {key or self.api_key}"}
        return httpx.AsyncClient(
            base_url=self.url, headers=auth | headers, timeout=30.0
        )

    def anonymous_client(self, **headers: str) -> httpx.AsyncClient:
        """An HTTP client of the API that presents no API key."""
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30.0)

    @asynccontextmanager
    async def db(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection of its own to the stack's Postgres."""
        conn = await asyncpg.connect(self.settings.database_url.get_secret_value())
        try:
            yield conn
        finally:
            await conn.close()

    async def fetchval(self, query: str, *args: object) -> Any:
        """One value from the stack's Postgres."""
        async with self.db() as conn:
            return await conn.fetchval(query, *args)

    async def run_context(self, body: dict[str, Any]) -> dict[str, Any]:
        """The context the API binds the operator's run ``body`` to."""
        async with self.db() as conn:
            agent = await get_agent(conn, body["agent_id"])
        assert agent is not None, body["agent_id"]
        return run_context(agent, body["action"], body["params"], OPERATOR_WALLET)


def new_replay_key() -> str:
    """A replay key no other test uses: workflow ids outlive a test's stack."""
    return f"rk_{uuid.uuid4().hex[:16]}"


def new_tx_hash() -> str:
    """A settlement transaction hash of its own, to script on the node."""
    return hex(secrets.randbits(248) | 1)


def x402_headers(challenge: Challenge, payment: PaymentPayload) -> dict[str, str]:
    """The x402 request headers that present ``payment`` for ``challenge``."""
    return {
        CHALLENGE_HEADER: challenge.model_dump_json(exclude_none=True),
        PAYMENT_HEADER: payment.model_dump_json(),
    }


def presentation(challenge: Challenge, payment: PaymentPayload) -> dict[str, Any]:
    """The JSON body of /verify and /settle for ``payment``."""
    return {
        "challenge": challenge.to_wire(),
        "payment": payment.model_dump(mode="json"),
    }


async def challenge_for_run(api: httpx.AsyncClient, body: dict[str, Any]) -> Challenge:
    """The challenge of the 402 that an unpaid ``POST /runs`` answers."""
    answer = await api.post(RUNS, json=body)
    assert answer.status_code == 402, answer.text
    return Challenge.model_validate(answer.json()["challenge"])


async def post_in_segments(
    url: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    *,
    segment: int = 1400,
) -> tuple[int | None, bytes]:
    """POST over a raw socket, a TCP segment's worth at a time, as a WAN delivers it.

    httpx on loopback hands the server the whole request in one read, which
    hides limits that apply to headers arriving in pieces. Returns the status
    and body, or None and b"" when the server dropped the connection.
    """
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Connection: close",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    try:
        for start in range(0, len(request), segment):
            writer.write(request[start : start + segment])
            await writer.drain()
            await asyncio.sleep(0.005)  # let the server read this segment alone
        response = await reader.read()
    except ConnectionError:
        return None, b""
    finally:
        writer.close()

    head, _, content = response.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    return (int(status_line[1]) if len(status_line) > 1 else None), content


async def poll(
    read: Callable[[], Awaitable[Any]],
    until: Callable[[Any], bool],
    *,
    timeout: float = 10.0,
    interval: float = 0.2,
) -> Any:
    """``read()`` again until ``until`` holds of it; its last value either way."""
    deadline = time.monotonic() + timeout
    value = await read()
    while not until(value) and time.monotonic() < deadline:
        await asyncio.sleep(interval)
        value = await read()
    return value


def stack_settings(
    *, database_url: str, temporal_address: str, rpc_url: str, **overrides: Any
) -> Settings:
    """Settings of a test stack on its own task queue."""
    fields: dict[str, Any] = {
        "x402_facilitator_secret": SECRET,
        "x402_reconcile_secret": RECONCILE_SECRET,
        "database_url": database_url,
        "temporal_address": temporal_address,
        "temporal_task_queue": f"tq-{uuid.uuid4().hex[:12]}",
        "starknet_rpc_url": rpc_url,
        "x402_finality_first_interval_seconds": 1,
        "x402_finality_max_interval_seconds": 2,
        "x402_run_wait_seconds": 5,
    }
    return load_settings(**(fields | overrides))


@asynccontextmanager
async def running_api(settings: Settings) -> AsyncIterator[str]:
    """uvicorn serving the app on a free port; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        # h11 stops at 16 KiB of headers by default, below X402_MAX_HEADER_BYTES.
        h11_max_incomplete_event_size=settings.x402_max_header_bytes + 64 * 1024,
        # X402_TRUSTED_PROXIES decides whom to believe, not uvicorn.
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def running_worker(
    env: WorkflowEnvironment, settings: Settings, executor_url: str, key: str
) -> AsyncIterator[Worker]:
    """A worker in this process on the stack's task queue, real activities."""
    pool = await create_pool(settings.database_url.get_secret_value(), max_size=4)
    worker = Worker(
        pydantic_client(env),
        task_queue=settings.temporal_task_queue,
        workflows=[PaymentWorkflow, RunWorkflow],
        activities=build_activities(
            SigningActivities(settings.facilitator_secrets),
            LedgerActivities(pool),
            SettlementActivities(settings.rpc_urls),
            ExecutionActivities(executor_url, key),
        ),
    )
    try:
        async with worker:
            yield worker
    finally:
        await pool.close()


async def seed(settings: Settings) -> dict[str, str]:
    """API keys for two operators and an admin, a paid and a free agent."""
    pool = await create_pool(settings.database_url.get_secret_value(), max_size=1)
    try:
        async with connection(pool) as conn:
            api_key, _ = await create_api_key(conn, wallet=OPERATOR_WALLET)
            other_key, _ = await create_api_key(conn, wallet=OTHER_WALLET)
            admin_key, _ = await create_api_key(
                conn, wallet=OPERATOR_WALLET, is_admin=True
            )
            for agent_id, price in (("steward", PRICE), ("free-swapper", 0)):
                await upsert_agent(
                    conn,
                    AgentSpec(
                        agent_id=agent_id,
                        agent_type=AgentType.STAKING_STEWARD
                        if price
                        else AgentType.SWAP_RUNNER,
                        service_wallet=RECIPIENT,
                        price_amount=price,
                        price_token="STRK",
                        network="sepolia",
                    ),
                )
    finally:
        await pool.close()
    return {"api_key": api_key, "other_key": other_key, "admin_key": admin_key}


@asynccontextmanager
async def running_stack(
    env: WorkflowEnvironment,
    database_url: str,
    node: StarknetNode,
    executor: StarkzapExecutor,
    **overrides: Any,
) -> AsyncIterator[Stack]:
    """A seeded stack: a worker and the API on ``database_url``, with ``overrides``."""
    settings = stack_settings(
        database_url=database_url,
        temporal_address=env.client.service_client.config.target_host,
        rpc_url=node.url,
        **overrides,
    )
    keys = await seed(settings)
    async with (
        running_worker(env, settings, executor.url, API_KEY),
        running_api(settings) as url,
    ):
        yield Stack(
            url=url,
            settings=settings,
            paid_agent="steward",
            free_agent="free-swapper",
            **keys,
        )
