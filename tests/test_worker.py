"""worker.py as a process: serves metrics, stops on SIGTERM, refuses bad starts."""

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from tests.harness.executor import API_KEY, StarkzapExecutor
from tests.harness.starknet_node import SN_MAIN, StarknetNode
from tests.paths import REPO_ROOT

READY_TIMEOUT_SECONDS = 20.0
EXIT_TIMEOUT_SECONDS = 30.0

# What a Python process needs from ours; every setting comes from the test.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def worker_env(
    temporal_dev_env: WorkflowEnvironment,
    database_url: str,
    starknet_node: StarknetNode,
) -> dict[str, str]:
    """A complete worker environment on this test's queue, database and node."""
    inherited = {name: os.environ[name] for name in INHERITED if name in os.environ}
    return inherited | {
        "PYTHONUNBUFFERED": "1",
        "X402_FACILITATOR_SECRET": secrets.token_hex(32),
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": temporal_dev_env.client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": f"tq-{uuid.uuid4().hex[:12]}",
        "STARKNET_RPC_URL": starknet_node.url,
        "X402_NETWORK": "sepolia",
        "X402_METRICS_PORT": str(_free_port()),
    }


@contextlib.asynccontextmanager
async def _worker(
    env: dict[str, str], log_path: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m worker`` with its output in ``log_path``; killed if still alive."""
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "worker",
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def _run_to_exit(env: dict[str, str], log_path: Path) -> tuple[int, str]:
    """Exit status and output of a worker expected to stop by itself."""
    async with _worker(env, log_path) as process:
        status = await asyncio.wait_for(process.wait(), EXIT_TIMEOUT_SECONDS)
    return status, log_path.read_text()


async def _scrape_when_ready(
    process: asyncio.subprocess.Process,
    url: str,
    is_ready: Callable[[str], bool],
    log_path: Path,
) -> str:
    """Poll ``url`` until its text satisfies ``is_ready``; fail if the worker dies."""
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_SECONDS
    async with httpx.AsyncClient(timeout=2.0) as http:
        while asyncio.get_running_loop().time() < deadline:
            if process.returncode is not None:
                pytest.fail(f"worker exited early:\n{log_path.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                response = await http.get(url)
                if response.status_code == 200 and is_ready(response.text):
                    return response.text
            await asyncio.sleep(0.2)
    pytest.fail(f"worker not ready in time:\n{log_path.read_text()}")


def _has_sdk_metric(text: str) -> bool:
    return any(line.startswith("temporal_") for line in text.splitlines())


async def test_worker_serves_both_metric_sets_then_stops_on_sigterm(
    worker_env: dict[str, str], starkzap_executor: StarkzapExecutor, tmp_path: Path
) -> None:
    env = worker_env | {
        "STARKZAP_EXECUTOR_URL": starkzap_executor.url,
        "STARKZAP_EXECUTOR_API_KEY": API_KEY,
    }
    url = f"http://127.0.0.1:{env['X402_METRICS_PORT']}/metrics"
    log_path = tmp_path / "worker.log"

    async with _worker(env, log_path) as process:
        text = await _scrape_when_ready(
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
    url = f"http://127.0.0.1:{_free_port()}/v0_10/{api_key}?apikey={api_key}"
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
