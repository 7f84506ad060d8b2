"""The ``dev`` command: the whole stack on one machine, supervised until Ctrl-C."""

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from api.main import create_app
from cli import stack
from settings import Settings, SettingsError, load_settings
from worker import StartupError, run_worker

logger = logging.getLogger(__name__)

STOP_SECONDS = 20.0


def register(app: typer.Typer) -> None:
    """Add ``dev`` to the project CLI."""
    app.command()(dev)


def dev(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Where Postgres, Temporal and the secrets keep their data."),
    ] = None,
    api_port: Annotated[int, typer.Option(help="Port of the HTTP API.")] = 8000,
    temporal_port: Annotated[int, typer.Option(help="Port of Temporal.")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Port of the Temporal UI.")] = 8233,
    metrics_port: Annotated[
        int, typer.Option(help="Port of the worker's metrics.")
    ] = 9464,
    chain: Annotated[
        str,
        typer.Option(
            help="local: the project's Starknet simulator; rpc: STARKNET_RPC_URL."
        ),
    ] = "local",
) -> None:
    """Start Postgres, Temporal and its UI, the worker and the API; Ctrl-C stops all."""
    if chain not in ("local", "rpc"):
        raise typer.BadParameter("--chain is local or rpc")
    folder = data_dir or stack.default_data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for port, option in (
            (api_port, "--api-port"),
            (temporal_port, "--temporal-port"),
            (ui_port, "--ui-port"),
            (metrics_port, "--metrics-port"),
        ):
            stack.require_free_port(port, option)
    except stack.PortTaken as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(2) from None

    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s %(message)s"
    )
    ports = _Ports(api_port, temporal_port, ui_port, metrics_port)
    raise typer.Exit(asyncio.run(_run(folder, ports, chain)))


@dataclass(frozen=True)
class _Ports:
    api: int
    temporal: int
    ui: int
    metrics: int


def _say(component: str, message: str, colour: str = "green") -> None:
    typer.secho(f"{component:<10}", fg=colour, bold=True, nl=False)
    typer.echo(f" {message}")


async def _run(data_dir: Path, ports: _Ports, chain: str) -> int:
    """Start each part in order, then wait for a signal or a part that dies."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    async with contextlib.AsyncExitStack() as parts:
        try:
            tasks = await _start_all(parts, data_dir, ports, chain, stop)
        except (RuntimeError, OSError, SettingsError, StartupError) as error:
            _say("error", str(error), "red")
            return 1
        if stop.is_set():
            return 0

        stopper = asyncio.create_task(stop.wait(), name="stop")
        done, _ = await asyncio.wait(
            [stopper, *tasks], return_when=asyncio.FIRST_COMPLETED
        )
        died = [task for task in done if task is not stopper]
        for task in died:
            _say(
                "error", f"{task.get_name()} stopped unexpectedly: {_why(task)}", "red"
            )
        stop.set()
        _say("stopping", "shutting the stack down", "yellow")
        status = 1 if died else 0
    _say("stopped", "every part of the stack has stopped", "yellow")
    return status


async def _start_all(
    parts: contextlib.AsyncExitStack,
    data_dir: Path,
    ports: _Ports,
    chain: str,
    stop: asyncio.Event,
) -> list[asyncio.Task[object]]:
    secrets = stack.dev_secrets(data_dir)

    # Postgres: embedded, its data in the data dir, so payments survive a restart.
    server, database_url = await asyncio.to_thread(stack.start_postgres, data_dir)
    parts.callback(server.cleanup)
    await stack.ensure_database(server)
    _say("postgres", f"embedded PostgreSQL ready, data in {data_dir / 'pgdata'}")

    # Temporal: the dev server on a SQLite file, search attributes registered.
    temporal = await stack.start_temporal(
        data_dir, port=ports.temporal, ui_port=ports.ui
    )
    parts.push_async_callback(stack.stop_process, temporal, STOP_SECONDS)
    try:
        await stack.wait_for_port(
            ports.temporal, temporal, stack.TEMPORAL_START_SECONDS
        )
        await stack.wait_for_port(ports.ui, temporal, stack.TEMPORAL_START_SECONDS)
    except RuntimeError as error:
        raise RuntimeError(
            f"Temporal did not start: {error}; see {data_dir / 'temporal.log'}"
        ) from None
    _say("temporal", f"dev server on 127.0.0.1:{ports.temporal}, UI on :{ports.ui}")

    chain_url = await _start_chain(parts, chain)
    settings = _settings(secrets, database_url, ports, chain_url)

    # Worker and API run in this process, each as a task the supervisor watches.
    ready = asyncio.Event()
    worker = asyncio.create_task(
        run_worker(settings, ready=ready, stop=stop), name="worker"
    )
    parts.push_async_callback(_finish, worker)
    await _first(ready.wait(), worker)
    _say("worker", f"polling task queue {settings.temporal_task_queue}")

    server_api = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=ports.api,
            log_level="warning",
            h11_max_incomplete_event_size=settings.x402_max_header_bytes + 65536,
            # X402_TRUSTED_PROXIES decides whom to believe, not uvicorn.
            proxy_headers=False,
        )
    )
    api = asyncio.create_task(server_api.serve(), name="api")
    parts.push_async_callback(_stop_api, server_api, api)
    while not server_api.started:
        if api.done():
            raise RuntimeError(f"the API did not start: {_why(api)}")
        await asyncio.sleep(0.05)
    api_url = f"http://127.0.0.1:{ports.api}"
    _say("api", f"listening on {api_url}")

    info = stack.StackInfo(
        api_url=api_url,
        docs_url=f"{api_url}/docs",
        temporal_address=f"127.0.0.1:{ports.temporal}",
        temporal_ui_url=f"http://127.0.0.1:{ports.ui}",
        metrics_url=f"http://127.0.0.1:{ports.metrics}/metrics",
        database_url=database_url,
        chain=chain,
        chain_url=chain_url,
    )
    info.write(data_dir)
    _say(
        "ready",
        f"API {info.api_url}  docs {info.docs_url}  Temporal UI {info.temporal_ui_url}"
        f"  metrics {info.metrics_url}  (Ctrl-C stops everything)",
        "cyan",
    )
    return [worker, api, asyncio.create_task(temporal.wait(), name="temporal")]


async def _start_chain(parts: contextlib.AsyncExitStack, chain: str) -> str:
    if chain == "rpc":
        url = os.environ.get("STARKNET_RPC_URL")
        if not url:
            raise RuntimeError("--chain rpc needs STARKNET_RPC_URL")
        _say("chain", f"Starknet JSON-RPC at {url.split('?')[0]}")
        return url

    from devchain.server import DevChain

    simulator = DevChain()
    url = await simulator.start()
    parts.push_async_callback(simulator.stop)
    _say(
        "chain",
        f"LOCAL SIMULATOR at {url}: not a real Starknet chain; "
        "payments here move no money",
        "magenta",
    )
    return url


def _settings(
    secrets: dict[str, str], database_url: str, ports: _Ports, chain_url: str
) -> Settings:
    """The environment's settings, with the stack's own parts filled in."""
    fields: dict[str, object] = {
        "database_url": database_url,
        "temporal_address": f"127.0.0.1:{ports.temporal}",
        "starknet_rpc_url": chain_url,
        "x402_metrics_port": ports.metrics,
        "x402_facilitator_url": (
            f"http://127.0.0.1:{ports.api}/api/v1/marketplace/payments/x402"
        ),
    }
    for name, value in secrets.items():
        if not os.environ.get(name):
            fields[name.lower()] = value
    return load_settings(**fields)


async def _first(waiting: Awaitable[object], task: asyncio.Task[object]) -> None:
    """Wait for ``waiting``, unless ``task`` ends first (then raise its error)."""
    waiter = asyncio.ensure_future(waiting)
    done, _ = await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        raise RuntimeError(f"{task.get_name()} did not start: {_why(task)}")


async def _finish(task: asyncio.Task[object]) -> None:
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=STOP_SECONDS)


async def _stop_api(server: uvicorn.Server, task: asyncio.Task[object]) -> None:
    server.should_exit = True
    await _finish(task)


def _why(task: asyncio.Task[object]) -> str:
    if task.cancelled():
        return "cancelled"
    error = task.exception()
    return f"{type(error).__name__}: {error}" if error else "it exited"
