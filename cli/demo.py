"""The ``demo`` command: one complete paid run against a running dev stack."""

import asyncio
import json
import logging
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.status import Status

from cli import stack
from client import AsyncX402Client, Payment, X402ClientError
from devchain.client import DevChainError, submit_transfer
from protocol.models import Challenge
from protocol.tokens import token_address
from store.agents import upsert_agent
from store.api_keys import create_api_key
from store.pool import connect
from store.records import AgentSpec, AgentType

DEMO_FILE = "demo.json"
DEMO_AGENT = "demo-steward"
DEMO_PRICE = 10**18  # 1 STRK
# Made-up parties of the simulated chain: no key behind either address.
DEMO_OPERATOR = "0xde0a11"
DEMO_SERVICE_WALLET = "0xde0b0b"
DEMO_PAYER = "0xde0ca1"
DEMO_TONGO = "demo-tongo-payer-address"

console = Console()


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the project CLI."""
    app.command()(demo)


def demo(
    api_url: Annotated[
        str | None, typer.Option(help="The API; default: the dev stack's.")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="The dev stack's data dir.")
    ] = None,
) -> None:
    """Pay for one agent run on the dev stack and show it stage by stage."""
    folder = data_dir or stack.default_data_dir()
    try:
        info = stack.StackInfo.read(folder)
    except FileNotFoundError:
        console.print(
            f"[red]error:[/] no dev stack found in {folder}; start one with "
            "[bold]x402-rails dev[/] (or pass --data-dir)"
        )
        raise typer.Exit(2) from None
    if info.chain != "local":
        console.print(
            "[red]error:[/] the demo pays on the local chain simulator only; "
            "restart the stack with --chain local"
        )
        raise typer.Exit(2)

    try:
        outcome = asyncio.run(_demo(folder, info, api_url or info.api_url))
    except (X402ClientError, DevChainError, httpx.HTTPError, OSError) as error:
        console.print(f"[red]demo failed:[/] {type(error).__name__}: {error}")
        raise typer.Exit(1) from None
    _show(outcome, info)


class SimulatorPayer:
    """Pays a challenge with a transfer on the local chain simulator."""

    def __init__(self, chain_url: str, status: Status) -> None:
        self.chain_url = chain_url
        self.status = status
        self.tx_hash: str | None = None

    async def pay(self, challenge: Challenge) -> Payment:
        token = token_address(challenge.network, challenge.token, {})
        if token is None:
            raise RuntimeError(f"the simulator knows no contract for {challenge.token}")
        self.status.update(
            f"paying {challenge.min_amount} {challenge.token} "
            f"to {challenge.recipient[:12]}…"
        )
        self.tx_hash = await submit_transfer(
            self.chain_url,
            token=token,
            sender=DEMO_PAYER,
            recipient=challenge.recipient,
            amount=challenge.min_amount,
        )
        self.status.update(
            f"waiting for finality of {self.tx_hash[:14]}… on the simulator"
        )
        return Payment(
            tongo_address=DEMO_TONGO,
            amount=challenge.min_amount,
            settlement_tx_hash=self.tx_hash,
        )


class _StatusLog(logging.Handler):
    """Shows each step the client logs as the spinner's text."""

    def __init__(self, status: Status) -> None:
        super().__init__(logging.INFO)
        self.status = status

    def emit(self, record: logging.LogRecord) -> None:
        # "run accepted run_id=... status=202" -> "run accepted (status=202)"
        words = record.getMessage().split(" ")
        phrase = " ".join(word for word in words if "=" not in word)
        facts = ", ".join(word for word in words if "=" in word)
        console.print(f"  [green]✓[/] {phrase}  [dim]{facts}[/]")


async def _demo(folder: Path, info: stack.StackInfo, api_url: str) -> dict[str, Any]:
    api_key = await _demo_key(folder, info)
    with console.status("asking for a paid run…") as status:
        handler = _StatusLog(status)
        client_log = logging.getLogger("client.client")
        client_log.addHandler(handler)
        client_log.setLevel(logging.INFO)
        try:
            payer = SimulatorPayer(info.chain_url, status)
            async with AsyncX402Client(
                api_url, api_key, payer, poll_interval=0.5
            ) as client:
                run = await client.create_run(
                    DEMO_AGENT, "stake", {"amount": "1", "validator": "demo"}
                )
                payment = await client.payment_status(run["payment_ref"])
        finally:
            client_log.removeHandler(handler)
    return {"run": run, "payment": payment}


async def _demo_key(folder: Path, info: stack.StackInfo) -> str:
    """The demo's agent (kept current) and API key (created once, kept)."""
    path = folder / DEMO_FILE
    conn = await connect(info.database_url)
    try:
        await upsert_agent(
            conn,
            AgentSpec(
                agent_id=DEMO_AGENT,
                agent_type=AgentType.STAKING_STEWARD,
                service_wallet=DEMO_SERVICE_WALLET,
                price_amount=DEMO_PRICE,
                price_token="STRK",
                network="sepolia",
            ),
        )
        if path.exists():
            return json.loads(path.read_text())["api_key"]
        api_key, _ = await create_api_key(conn, wallet=DEMO_OPERATOR, label="demo")
    finally:
        await conn.close()

    path.write_text(json.dumps({"api_key": api_key}))
    path.chmod(0o600)
    console.print(f"  [green]✓[/] created agent {DEMO_AGENT} and a demo API key")
    return api_key


def _show(outcome: dict[str, Any], info: stack.StackInfo) -> None:
    run, payment = outcome["run"], outcome["payment"]
    colour = "green" if run["status"] == "completed" else "red"
    console.print(f"\n[bold {colour}]run {run['status']}[/]  {run['run_id']}")
    console.print_json(json.dumps(run.get("result") or {}))
    console.print(f"[bold]payment[/] {payment['paymentRef']}  {payment['status']}")
    if payment.get("receipt"):
        console.print_json(json.dumps(payment["receipt"]))
    ref = payment["paymentRef"]
    link = f"{info.temporal_ui_url}/namespaces/default/workflows/{ref}"
    console.print(f"[bold]Temporal UI[/] {link}")
