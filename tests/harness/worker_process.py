"""worker.py as a subprocess: its environment, start, readiness and end."""

import asyncio
import contextlib
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from tests.paths import REPO_ROOT

READY_TIMEOUT_SECONDS = 20.0
EXIT_TIMEOUT_SECONDS = 30.0

# What a Python process needs from ours; every setting comes from the test.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def worker_environment(
    *,
    temporal_address: str,
    database_url: str,
    rpc_url: str,
    facilitator_secret: str,
    task_queue: str | None = None,
) -> dict[str, str]:
    """A complete worker environment on a fresh task queue unless one is given."""
    inherited = {name: os.environ[name] for name in INHERITED if name in os.environ}
    return inherited | {
        "PYTHONUNBUFFERED": "1",
        "X402_FACILITATOR_SECRET": facilitator_secret,
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": temporal_address,
        "TEMPORAL_TASK_QUEUE": task_queue or f"tq-{uuid.uuid4().hex[:12]}",
        "STARKNET_RPC_URL": rpc_url,
        "X402_NETWORK": "sepolia",
        "X402_METRICS_PORT": str(free_port()),
    }


def metrics_url(env: dict[str, str]) -> str:
    """Where the worker started with ``env`` serves its metrics."""
    return f"http://127.0.0.1:{env['X402_METRICS_PORT']}/metrics"


@contextlib.asynccontextmanager
async def running_worker(
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


async def scrape_when_ready(
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


class WorkerProcesses:
    """The worker subprocesses of one test, all on one environment and task queue.

    Each start logs to its own numbered file; ``close`` kills whichever are
    still alive, so a failing test leaves no worker polling behind it.
    """

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_paths: list[Path] = []
        self._log_dir = log_dir
        self._stack = contextlib.AsyncExitStack()

    async def start(self) -> asyncio.subprocess.Process:
        """A new worker, returned once its metrics endpoint answers.

        The endpoint opens only after the Temporal worker polls, so a ready
        worker is one the server can hand tasks to.
        """
        log_path = self._log_dir / f"worker-{len(self.log_paths) + 1}.log"
        self.log_paths.append(log_path)
        process = await self._stack.enter_async_context(
            running_worker(self.env, log_path)
        )
        await scrape_when_ready(
            process, metrics_url(self.env), lambda _: True, log_path
        )
        return process

    def output(self) -> str:
        """Every worker's log so far, in start order, for failure messages."""
        return "\n".join(
            f"--- {path.name}\n{path.read_text()}" for path in self.log_paths
        )

    async def close(self) -> None:
        await self._stack.aclose()


async def kill_hard(process: asyncio.subprocess.Process) -> int:
    """SIGKILL, as a crash or the OOM killer would: no drain, no cleanup."""
    os.kill(process.pid, signal.SIGKILL)
    return await asyncio.wait_for(process.wait(), EXIT_TIMEOUT_SECONDS)
