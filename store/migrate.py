"""Schema migrations: numbered SQL files applied once each, in order, under a lock.

Home-made on purpose: yoyo needs a sync driver (psycopg) and Alembic needs
SQLAlchemy, while this project speaks to Postgres through asyncpg only.
"""

import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from store.errors import MigrationError
from store.pool import connect, connection

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Any fixed bigint works; this one spells "x402migr" in ASCII.
ADVISORY_LOCK_ID = 0x783430326D696772

_CREATE_LEDGER = """
create table if not exists schema_migrations (
    version integer primary key,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now()
)
"""


@dataclass(frozen=True)
class Migration:
    """One SQL file: ``NNNN_name.sql`` has version NNNN and name ``NNNN_name``."""

    version: int
    name: str
    sql: str
    checksum: str


async def apply_migrations(
    target: str | asyncpg.Pool, *, directory: Path = MIGRATIONS_DIR
) -> list[str]:
    """Apply the migrations not yet applied; returns the names applied by this call."""
    async with _dedicated_connection(target) as conn:
        # Session-level lock: a second runner waits, then finds nothing left to do.
        await conn.execute("select pg_advisory_lock($1)", ADVISORY_LOCK_ID)
        try:
            await conn.execute(_CREATE_LEDGER)
            return await _apply_pending(conn, load_migrations(directory))
        finally:
            await conn.execute("select pg_advisory_unlock($1)", ADVISORY_LOCK_ID)


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files of ``directory``, in version order."""
    migrations = []
    for path in sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        sql = path.read_text(encoding="utf-8")
        checksum = hashlib.sha256(sql.encode()).hexdigest()
        migrations.append(Migration(int(path.name[:4]), path.stem, sql, checksum))
    return migrations


async def _apply_pending(
    conn: asyncpg.Connection, migrations: list[Migration]
) -> list[str]:
    """Check the applied migrations' checksums, then apply the rest one by one."""
    rows = await conn.fetch("select version, name, checksum from schema_migrations")
    applied = {row["version"]: row for row in rows}

    names = []
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is None:
            await _apply_one(conn, migration)
            names.append(migration.name)
        elif recorded["checksum"] != migration.checksum:
            raise MigrationError(
                f"migration {migration.name} changed after it was applied: checksum "
                f"{migration.checksum} on disk, {recorded['checksum']} recorded"
            )
    return names


async def _apply_one(conn: asyncpg.Connection, migration: Migration) -> None:
    """Run one migration and record it in the same transaction."""
    async with conn.transaction():
        await conn.execute(migration.sql)
        await conn.execute(
            "insert into schema_migrations (version, name, checksum)"
            " values ($1, $2, $3)",
            migration.version,
            migration.name,
            migration.checksum,
        )
    logger.info("migration applied name=%s", migration.name)


@asynccontextmanager
async def _dedicated_connection(
    target: str | asyncpg.Pool,
) -> AsyncIterator[asyncpg.Connection]:
    """One connection held for the whole run, since the advisory lock is per session."""
    if isinstance(target, asyncpg.Pool):
        async with connection(target) as conn:
            yield conn
        return

    conn = await connect(target)
    try:
        yield conn
    finally:
        await conn.close()
