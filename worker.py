"""Payment worker: hosts the payment and run workflows and every activity they call."""

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from starknet_py.net.client_errors import ClientError
from starknet_py.net.full_node_client import FullNodeClient
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities.execution import ExecutionActivities
from activities.ledger import LedgerActivities
from activities.settlement import SettlementActivities
from activities.signing import SigningActivities
from metrics import REGISTRY
from settings import Settings, SettingsError, load_settings
from store.errors import MigrationError, StoreUnavailable
from store.migrate import apply_migrations
from store.pool import create_pool, describe_dsn
from workflows.payment import PaymentWorkflow
from workflows.run import RunWorkflow

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

# Exit status when the worker refuses to start: bad settings or the wrong world.
EXIT_REFUSED = 2

# What starknet_chainId answers per network: the chain name's ASCII as a felt.
CHAIN_NAMES = {"sepolia": "SN_SEPOLIA", "mainnet": "SN_MAIN"}
CHAIN_CHECK_TIMEOUT_SECONDS = 10.0

# A bounded sticky cache keeps memory flat however many payments wait on timers:
# an evicted workflow is rebuilt from its history when its next timer fires.
MAX_CACHED_WORKFLOWS = 1000
# On SIGTERM in-flight activities get this long to finish before they are
# cancelled, and the server hands them to another worker.
GRACEFUL_SHUTDOWN = timedelta(seconds=30)

# The scrape port listens on every interface so Prometheus can reach a container;
# the SDK's own exporter stays on loopback behind it.
METRICS_HOST = "0.0.0.0"
SDK_METRICS_HOST = "127.0.0.1"
SDK_SCRAPE_TIMEOUT = aiohttp.ClientTimeout(total=2.0)
RUNTIME_BIND_ATTEMPTS = 3


class StartupError(RuntimeError):
    """The worker refuses to start; the message names the variable to fix."""


async def run_worker(
    settings: Settings,
    *,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve the task queue until ``stop`` is set, or SIGTERM/SIGINT without one.

    Raises StartupError when a dependency is missing, unreachable or on the
    wrong chain; whatever was opened by then (pool, worker, servers) is closed.
    """
    dsn = _require_database_url(settings)
    await check_chain(settings)
    runtime, sdk_metrics_port = create_runtime()

    async with contextlib.AsyncExitStack() as cleanup:
        pool = await _open_store(dsn)
        cleanup.push_async_callback(pool.close)
        client = await _connect_temporal(settings, runtime)

        hosts = create_activity_hosts(settings, pool)
        cleanup.push_async_callback(_close_hosts, hosts)
        worker = Worker(
            client,
            task_queue=settings.temporal_task_queue,
            workflows=[PaymentWorkflow, RunWorkflow],
            activities=build_activities(*hosts),
            max_cached_workflows=MAX_CACHED_WORKFLOWS,
            graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        )
        run_task = asyncio.create_task(worker.run())
        cleanup.push_async_callback(_stop_worker, worker, run_task)
        await _wait_until_running(settings, worker, run_task)

        metrics = MetricsServer(sdk_metrics_port)
        cleanup.push_async_callback(metrics.close)
        metrics_url = await metrics.start(settings.x402_metrics_port)

        logger.info(
            "worker ready task_queue=%s namespace=%s temporal_address=%s "
            "metrics_url=%s",
            settings.temporal_task_queue,
            settings.temporal_namespace,
            settings.temporal_address,
            metrics_url,
        )
        if ready is not None:
            ready.set()
        await _serve_until_stopped(stop, run_task)
    logger.info("worker stopped task_queue=%s", settings.temporal_task_queue)


def main() -> None:
    """Run the worker from the environment; exit 2 when it refuses to start."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    try:
        settings = load_settings()
        asyncio.run(run_worker(settings))
    except (SettingsError, StartupError) as error:
        print(f"worker: {error}", file=sys.stderr)
        raise SystemExit(EXIT_REFUSED) from None


def create_activity_hosts(settings: Settings, pool: asyncpg.Pool) -> list[object]:
    """One instance per activity class, with its dependencies injected."""
    executor_url = settings.starkzap_executor_url
    api_key = settings.starkzap_executor_api_key
    return [
        SigningActivities(settings.facilitator_secrets),
        LedgerActivities(pool),
        SettlementActivities(settings.rpc_urls, settings.x402_token_addresses),
        ExecutionActivities(
            str(executor_url) if executor_url else None,
            api_key.get_secret_value() if api_key else None,
        ),
    ]


def build_activities(*hosts: object) -> list[Callable[..., Any]]:
    """Every ``@activity.defn`` method of ``hosts``, bound to its instance.

    Found by the SDK's marker, so a new activity method needs no worker change.
    """
    activities: list[Callable[..., Any]] = []
    for host in hosts:
        names: dict[str, None] = {}
        for cls in type(host).__mro__:
            for name, value in vars(cls).items():
                if hasattr(value, "__temporal_activity_definition"):
                    names.setdefault(name)
        activities.extend(getattr(host, name) for name in names)
    return activities


async def check_chain(settings: Settings) -> None:
    """Refuse to start when an RPC endpoint serves another chain than X402_NETWORK.

    The primary endpoint must answer; a fallback that cannot be reached now is
    only a warning, but one that answers for another chain is refused too.
    """
    expected = CHAIN_NAMES[settings.x402_network]
    primary, *fallbacks = settings.rpc_urls
    endpoints = [("STARKNET_RPC_URL", primary)]
    endpoints += [("STARKNET_FALLBACK_RPC_URLS", url) for url in fallbacks]

    for variable, url in endpoints:
        try:
            chain_id = await read_chain_id(url)
        except StartupError as error:
            if variable == "STARKNET_RPC_URL":
                raise StartupError(f"{variable}: {error}") from None
            logger.warning(
                "fallback rpc unreachable host=%s error=%s", _host(url), error
            )
            continue

        reported = _chain_name(chain_id)
        if reported != expected:
            raise StartupError(
                f"X402_NETWORK={settings.x402_network} expects chain {expected} "
                f"({_felt(expected)}), but {variable} at {_host(url)} reports "
                f"{reported} ({chain_id}); point the RPC URL at "
                f"{settings.x402_network} or change X402_NETWORK"
            )
        logger.info("chain checked host=%s chain=%s", _host(url), reported)


async def read_chain_id(url: str) -> str:
    """``starknet_chainId`` of one endpoint; StartupError naming its host if none."""
    client = FullNodeClient(node_url=url)
    try:
        async with asyncio.timeout(CHAIN_CHECK_TIMEOUT_SECONDS):
            return await client.get_chain_id()
    except (
        ClientError,
        aiohttp.ClientError,
        OSError,
        TimeoutError,
        ValueError,
    ) as error:
        detail = _scrub(str(error), url) or type(error).__name__
        raise StartupError(
            f"cannot read the chain id from {_host(url)} ({detail})"
        ) from None


def create_runtime() -> tuple[Runtime, int]:
    """A Temporal runtime whose SDK metrics are exported on a free loopback port."""
    failure: ValueError | None = None
    for _ in range(RUNTIME_BIND_ATTEMPTS):
        # Another process can take the probed port before the exporter binds it.
        port = _free_port(SDK_METRICS_HOST)
        metrics = PrometheusConfig(bind_address=f"{SDK_METRICS_HOST}:{port}")
        try:
            return Runtime(telemetry=TelemetryConfig(metrics=metrics)), port
        except ValueError as error:
            failure = error
    raise StartupError(f"cannot start the Temporal SDK metrics exporter: {failure}")


class MetricsServer:
    """One scrape endpoint: the project's REGISTRY, then the Temporal SDK's metrics.

    The SDK exporter cannot share a registry with prometheus_client, so its
    text is fetched from the loopback port and appended; metric names do not
    collide because ours start with ``x402_`` and the SDK's with ``temporal_``.
    """

    def __init__(self, sdk_metrics_port: int) -> None:
        self._sdk_url = f"http://{SDK_METRICS_HOST}:{sdk_metrics_port}/metrics"
        self._session: aiohttp.ClientSession | None = None
        app = web.Application()
        app.router.add_get("/metrics", self._scrape)
        self._runner = web.AppRunner(app, access_log=None)

    async def start(self, port: int) -> str:
        """Listen on ``port`` (0 picks a free one); returns the scrape URL."""
        self._session = aiohttp.ClientSession(timeout=SDK_SCRAPE_TIMEOUT)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, METRICS_HOST, port).start()
        except OSError as error:
            raise StartupError(
                f"X402_METRICS_PORT: cannot listen on port {port} ({error})"
            ) from None
        bound = int(self._runner.addresses[0][1])
        url = f"http://localhost:{bound}/metrics"
        logger.info("metrics serving url=%s listen=%s", url, METRICS_HOST)
        return url

    async def close(self) -> None:
        await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _scrape(self, request: web.Request) -> web.Response:
        body = generate_latest(REGISTRY) + await self._sdk_metrics()
        return web.Response(
            body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4}
        )

    async def _sdk_metrics(self) -> bytes:
        # Our own counters still answer when the SDK exporter does not.
        assert self._session is not None
        try:
            async with self._session.get(self._sdk_url) as response:
                response.raise_for_status()
                return await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.warning("sdk metrics unavailable error=%s", error)
            return b""


def _require_database_url(settings: Settings) -> str:
    if settings.database_url is None:
        raise StartupError(
            "DATABASE_URL is required for the worker: set it to the payment "
            "store's Postgres DSN"
        )
    return settings.database_url.get_secret_value()


async def _open_store(dsn: str) -> asyncpg.Pool:
    """The pool, with every migration applied before any activity runs."""
    try:
        pool = await create_pool(dsn)
    except StoreUnavailable as error:
        raise StartupError(f"DATABASE_URL: {error}") from None

    try:
        applied = await apply_migrations(pool)
    except (StoreUnavailable, MigrationError) as error:
        await pool.close()
        raise StartupError(f"DATABASE_URL: {error}") from None
    logger.info("store migrated server=%s applied=%s", describe_dsn(dsn), len(applied))
    return pool


async def _connect_temporal(settings: Settings, runtime: Runtime) -> Client:
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
            runtime=runtime,
        )
    except RuntimeError as error:
        raise StartupError(
            f"TEMPORAL_ADDRESS: cannot connect to {settings.temporal_address} ({error})"
        ) from None


async def _wait_until_running(
    settings: Settings, worker: Worker, run_task: asyncio.Task[None]
) -> None:
    # Worker.run validates the namespace before it polls and offers no event.
    while not worker.is_running:
        if run_task.done():
            try:
                run_task.result()
            except RuntimeError as error:
                raise StartupError(
                    f"TEMPORAL_NAMESPACE: no worker on namespace "
                    f"{settings.temporal_namespace} ({error})"
                ) from None
            raise StartupError("the Temporal worker stopped before it started")
        await asyncio.sleep(0.05)


async def _serve_until_stopped(
    stop: asyncio.Event | None, run_task: asyncio.Task[None]
) -> None:
    """Return once asked to stop; re-raise if the worker fails first."""
    signals = _stop_on_signals() if stop is None else contextlib.nullcontext(stop)
    with signals as event:
        waiter = asyncio.create_task(event.wait())
        done, _ = await asyncio.wait(
            {waiter, run_task}, return_when=asyncio.FIRST_COMPLETED
        )
    waiter.cancel()
    if run_task in done:
        run_task.result()
        raise RuntimeError("the Temporal worker stopped without being asked")


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[asyncio.Event]:
    # Installed only once ready: before that there is nothing to hand back, and
    # the default action ends a start that hangs on an unreachable dependency.
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, _request_stop, stop, signum)
    try:
        yield stop
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def _request_stop(stop: asyncio.Event, signum: int) -> None:
    logger.info("shutdown requested signal=%s", signal.Signals(signum).name)
    stop.set()


async def _stop_worker(worker: Worker, run_task: asyncio.Task[None]) -> None:
    if run_task.done():
        return
    logger.info(
        "worker draining graceful_timeout_seconds=%s",
        GRACEFUL_SHUTDOWN.total_seconds(),
    )
    await worker.shutdown()
    await run_task


async def _close_hosts(hosts: list[object]) -> None:
    for host in hosts:
        close = getattr(host, "close", None)
        if close is not None:
            await close()


def _chain_name(chain_id: str) -> str:
    """``0x534e5f4d41494e`` as ``SN_MAIN``; anything unreadable as it came."""
    try:
        value = int(chain_id, 16)
        return value.to_bytes((value.bit_length() + 7) // 8, "big").decode("ascii")
    except (TypeError, ValueError):
        return str(chain_id)


def _felt(name: str) -> str:
    return "0x" + name.encode("ascii").hex()


def _host(url: str) -> str:
    # Providers put API keys in the path or query: only the host is safe to show.
    return urlsplit(url).netloc.rpartition("@")[2] or "?"


def _scrub(text: str, url: str) -> str:
    parts = urlsplit(url)
    for secret in (url, parts.path, parts.query):
        if len(secret) > 1:
            text = text.replace(secret, "/<redacted>")
    return text


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    main()
