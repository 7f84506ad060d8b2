"""``python -m devchain`` serves with a simulator banner and stops on SIGTERM."""

import asyncio
import signal
import sys

from starknet_py.net.full_node_client import FullNodeClient

from devchain.__main__ import BANNER
from tests.devchain.helpers import pay
from tests.paths import REPO_ROOT

START_TIMEOUT = 10.0


async def test_module_serves_until_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devchain",
        "--port",
        "0",
        "--network",
        "mainnet",
        "--finality-seconds",
        "0.1",
        "--pre-confirm-seconds",
        "0",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        banner = await asyncio.wait_for(_read_until_url(process), START_TIMEOUT)
        url = banner[-1].split()[-1]
        submitted = await pay(url)
        chain_id = await FullNodeClient(node_url=url).get_chain_id()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), START_TIMEOUT)

    assert BANNER in banner
    assert chain_id == "0x534e5f4d41494e"
    assert submitted.tx_hash.startswith("0x")
    assert process.returncode == 0
    assert b"WARNING devchain.server chain simulator started" in stderr


async def _read_until_url(process: asyncio.subprocess.Process) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("url:"):
        line = await process.stdout.readline()
        if not line:
            raise RuntimeError(f"devchain exited before its URL: {lines}")
        lines.append(line.decode().rstrip())
    return lines
