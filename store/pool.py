"""Connections to the payment store: an asyncpg pool with JSON codecs, fail-closed."""

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs, urlsplit

import asyncpg

from store.errors import StoreUnavailable

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10.0

# Errors that mean the server is gone or refusing us, not that a query was wrong.
# InterfaceError stays out: it also signals client misuse, which a retry won't fix.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)
# A connection that closed between two statements fails the next one with one of
# these instead: InterfaceError once the pool has detached it, InternalClientError
# when the statement races the close. Only a closed connection makes them ours.
CLOSED_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10
) -> asyncpg.Pool:
    """A pool whose first connection is opened now, so a bad DSN fails at start."""
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=CONNECT_TIMEOUT_SECONDS,
            init=set_json_codecs,
        )
    except (*UNAVAILABLE_ERRORS, asyncpg.PostgresError) as error:
        raise _unavailable(dsn, error) from error

    logger.info(
        "postgres pool ready server=%s max_size=%s", describe_dsn(dsn), max_size
    )
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    """One dedicated connection outside any pool, with the pool's JSON codecs."""
    try:
        conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_SECONDS)
    except (*UNAVAILABLE_ERRORS, asyncpg.PostgresError) as error:
        raise _unavailable(dsn, error) from error

    await set_json_codecs(conn)
    return conn


async def set_json_codecs(conn: asyncpg.Connection) -> None:
    """Make json and jsonb columns read and write plain Python objects."""
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


@asynccontextmanager
async def connection(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection; a lost server surfaces as StoreUnavailable."""
    try:
        async with pool.acquire() as conn:
            try:
                yield conn
            except CLOSED_CONNECTION_ERRORS as error:
                if not _is_closed(conn):
                    raise
                raise StoreUnavailable(
                    f"lost the connection to Postgres: {error}"
                ) from error
    except UNAVAILABLE_ERRORS as error:
        raise StoreUnavailable(f"lost the connection to Postgres: {error}") from error


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection inside one transaction: one state transition, or none."""
    async with connection(pool) as conn, conn.transaction():
        yield conn


def describe_dsn(dsn: str) -> str:
    """``host[:port]/database`` of a DSN, for messages: never the user or password."""
    parts = urlsplit(dsn)
    # A '/', '?' or '#' left unencoded in the password ends the host part early,
    # so what urlsplit took for the host (or the path) holds the credentials.
    cut_short = parts.netloc and "@" not in parts.netloc and "@" in dsn
    if cut_short or (parts.netloc and "@" in parts.path):
        return "(DSN hidden: its user or password is not percent-encoded)"
    hosts = parts.netloc.rpartition("@")[2]
    if not hosts:
        # libpq URIs may name a unix socket directory in the query instead.
        hosts = parse_qs(parts.query).get("host", ["localhost"])[0]
    return f"{hosts}{parts.path}"


def _is_closed(conn: asyncpg.Connection) -> bool:
    """Whether a pooled connection has closed; the pool detaches one that has."""
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:
        return True


def _unavailable(dsn: str, error: BaseException) -> StoreUnavailable:
    """StoreUnavailable naming the server, with any password scrubbed from the text."""
    detail = f"{type(error).__name__}: {error}"
    password = urlsplit(dsn).password
    if password:
        detail = detail.replace(password, "***")
    return StoreUnavailable(f"cannot reach Postgres at {describe_dsn(dsn)} ({detail})")
