"""The API on uvicorn with a worker behind it, on real Temporal and Postgres."""

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.execution import ExecutionActivities
from activities.ledger import LedgerActivities
from activities.settlement import SettlementActivities
from activities.signing import SigningActivities
from api.main import create_app
from settings import Settings, load_settings
from store.agents import upsert_agent
from store.api_keys import create_api_key
from store.pool import connection, create_pool
from store.records import AgentSpec, AgentType
from tests.factories import RECIPIENT, SECRET
from tests.workflows.rails import pydantic_client
from worker import build_activities
from workflows.payment import PaymentWorkflow
from workflows.run import RunWorkflow

RECONCILE_SECRET = "reconcile-secret-for-tests-0123456789"
OPERATOR_WALLET = "0x5e11e7a1e7b0c5d3a4f1d2c3b4a5968778695a4b3c2d1e0f1a2b3c4d5e6f7a8"
OTHER_WALLET = "0x7a11e7a1e7b0c5d3a4f1d2c3b4a5968778695a4b3c2d1e0f1a2b3c4d5e6f7a9"
PRICE = 100


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
