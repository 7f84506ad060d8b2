"""worker.py as a process: serves metrics, stops on SIGTERM, refuses bad starts."""

import asyncio
import secrets
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from tests.harness.executor import API_KEY, StarkzapExecutor
from tests.harness.starknet_node import SN_MAIN, StarknetNode
from tests.harness.worker_process import (
    EXIT_TIMEOUT_SECONDS,
    free_port,
    metrics_url,
    running_worker,
    scrape_when_ready,
    worker_environment,
)


@pytest.fixture
def worker_env(
    temporal_dev_env: WorkflowEnvironment,
    database_url: str,
    starknet_node: StarknetNode,
) -> dict[str, str]:
    """A complete worker environment on this test's queue, database and node."""
    return worker_environment(
        temporal_address=temporal_dev_env.client.service_client.config.target_host,
        database_url=database_url,
        rpc_url=starknet_node.url,
        facilitator_secret=secrets.token_hex(32),
    )


async def _run_to_exit(env: dict[str, str], log_path: Path) -> tuple[int, str]:
    """Exit status and output of a worker expected to stop by itself."""
    async with running_worker(env, log_path) as process:
        status = await asyncio.wait_for(process.wait(), EXIT_TIMEOUT_SECONDS)
    return status, log_path.read_text()


def _has_sdk_metric(text: str) -> bool:
    return any(line.startswith("temporal_") for line in text.splitlines())


async def test_worker_serves_both_metric_sets_then_stops_on_sigterm(
    worker_env: dict[str, str], starkzap_executor: StarkzapExecutor, tmp_path: Path
) -> None:
    env = worker_env | {
        "STARKZAP_EXECUTOR_URL": starkzap_executor.url,
        "STARKZAP_EXECUTOR_API_KEY": API_KEY,
    }
    url = metrics_url(env)
    log_path = tmp_path / "worker.log"

    async with running_worker(env, log_path) as process:
        text = await scrape_when_ready(
            process,
            url,
            lambda text: (
                "x402_challenge_issued_total" in text and _has_sdk_metric(text)
            ),
            log_path,
        )
        process.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(process.wait(), EXIT_TIMEOUT_SECONDS)
    output = log_path.read_text()

    assert status == 0, output
    families = {family.name for family in text_string_to_metric_families(text)}
    assert "x402_challenge_issued" in families
    assert any(name.startswith("temporal_") for name in families)
    assert f"worker ready task_queue={env['TEMPORAL_TASK_QUEUE']}" in output
    assert "shutdown requested signal=SIGTERM" in output
    assert "worker stopped" in output
    assert env["X402_FACILITATOR_SECRET"] not in output
    assert API_KEY not in output


async def test_worker_refuses_a_node_of_another_chain(
    worker_env: dict[str, str],
    starknet_node_factory: Callable[..., StarknetNode],
    tmp_path: Path,
) -> None:
    mainnet_node = starknet_node_factory(chain_id=SN_MAIN)
    env = worker_env | {"STARKNET_RPC_URL": mainnet_node.url}

    status, output = await _run_to_exit(env, tmp_path / "worker.log")

    assert status == 2, output
    assert "X402_NETWORK=sepolia" in output
    assert "SN_SEPOLIA" in output
    assert f"reports SN_MAIN ({SN_MAIN})" in output


async def test_worker_refuses_an_unreachable_rpc_without_showing_its_key(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    api_key = secrets.token_hex(16)
    url = f"http://127.0.0.1:{free_port()}/v0_10/{api_key}?apikey={api_key}"
    env = worker_env | {"STARKNET_RPC_URL": url}

    status, output = await _run_to_exit(env, tmp_path / "worker.log")

    assert status == 2, output
    assert "STARKNET_RPC_URL" in output
    assert "127.0.0.1" in output
    assert api_key not in output


async def test_worker_refuses_a_metrics_port_already_taken(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        env = worker_env | {"X402_METRICS_PORT": str(taken.getsockname()[1])}

        status, output = await _run_to_exit(env, tmp_path / "worker.log")

    assert status == 2, output
    assert "X402_METRICS_PORT" in output
    assert "worker ready" not in output


@pytest.mark.parametrize("variable", ["X402_FACILITATOR_SECRET", "DATABASE_URL"])
async def test_worker_without_a_required_variable_exits_2_naming_it(
    worker_env: dict[str, str], variable: str, tmp_path: Path
) -> None:
    env = {name: value for name, value in worker_env.items() if name != variable}

    status, output = await _run_to_exit(env, tmp_path / "worker.log")

    assert status == 2, output
    assert variable in output
