"""``x402-rails dev`` and ``demo`` as a newcomer runs them: real processes."""

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

CLI = [sys.executable, "-m", "cli"]
READY_SECONDS = 90.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class DevStack:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.ports = {
            "--api-port": free_port(),
            "--temporal-port": free_port(),
            "--ui-port": free_port(),
            "--metrics-port": free_port(),
        }
        self.lines: list[str] = []

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['--api-port']}"

    def args(self) -> list[str]:
        options = [str(part) for pair in self.ports.items() for part in pair]
        return [*CLI, "dev", "--data-dir", str(self.data_dir), *options]


@asynccontextmanager
async def running(dev: DevStack) -> AsyncIterator[asyncio.subprocess.Process]:
    """``dev`` started and ready; stopped with SIGINT (as Ctrl-C) at the end."""
    process = await asyncio.create_subprocess_exec(
        *dev.args(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=_environment(),
    )
    try:
        async with asyncio.timeout(READY_SECONDS):
            while True:
                line = (await process.stdout.readline()).decode()
                if not line:
                    raise AssertionError("dev exited early:\n" + "".join(dev.lines))
                dev.lines.append(line)
                if line.startswith("ready"):
                    break
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            rest, _ = await asyncio.wait_for(process.communicate(), timeout=60)
            dev.lines.append(rest.decode())


def _environment() -> dict[str, str]:
    # The stack brings its own secrets and parts: nothing of the caller's leaks in.
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    return {key: value for key, value in os.environ.items() if key in keep}


async def demo(dev: DevStack) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *CLI,
        "demo",
        "--data-dir",
        str(dev.data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=_environment() | {"COLUMNS": "200"},
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=90)
    return process.returncode or 0, output.decode()


async def test_dev_starts_the_stack_runs_the_demo_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    dev = DevStack(tmp_path / "stack")

    async with running(dev) as process:
        async with httpx.AsyncClient(base_url=dev.api_url) as api:
            ready = await api.get("/readyz")
            docs = await api.get("/docs")
        status, output = await demo(dev)
        ui = listening(dev.ports["--ui-port"])
    exit_status = process.returncode

    assert ready.status_code == 200
    assert docs.status_code == 200
    assert ui
    assert status == 0, output
    assert "run completed" in output
    assert "payment pay_" in output and "settled" in output
    assert f"127.0.0.1:{dev.ports['--ui-port']}/namespaces/default/workflows/pay_" in (
        output.replace("\n", "")
    )
    assert any("LOCAL SIMULATOR" in line for line in dev.lines)
    assert exit_status == 0, "".join(dev.lines)
    assert not any(listening(port) for port in dev.ports.values())


async def test_second_start_finds_the_earlier_payments(tmp_path: Path) -> None:
    dev = DevStack(tmp_path / "stack")
    async with running(dev):
        status, output = await demo(dev)
        assert status == 0, output

    async with running(dev):
        async with httpx.AsyncClient(base_url=dev.api_url) as api:
            counts = (await api.get("/api/v1/marketplace/payments/x402/metrics")).json()

    assert counts["totals"]["settle_settled"] == 1
    assert counts["totals"]["paywall_paid"] == 1


async def test_dev_refuses_a_port_that_is_taken(tmp_path: Path) -> None:
    dev = DevStack(tmp_path / "stack")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", dev.ports["--api-port"]))
        holder.listen()

        process = await asyncio.create_subprocess_exec(
            *dev.args(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=_environment(),
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=30)

    assert process.returncode == 2
    assert "--api-port" in output.decode()


async def test_demo_without_a_stack_says_how_to_start_one(tmp_path: Path) -> None:
    status, output = await demo(DevStack(tmp_path / "nothing"))

    assert status == 2
    assert "x402-rails dev" in output
