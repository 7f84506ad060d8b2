"""Claims about store.migrate: each migration applied once, in order, under a lock."""

import asyncio
import hashlib
import shutil
from pathlib import Path

import asyncpg
import pytest

from store.errors import MigrationError
from store.migrate import MIGRATIONS_DIR, apply_migrations, load_migrations
from store.pool import connect

STORE_TABLES = {
    "agent_runs",
    "agents",
    "api_keys",
    "idempotency_keys",
    "schema_migrations",
    "x402_payment_events",
    "x402_payments",
}


async def fetch_tables(dsn: str) -> set[str]:
    conn = await connect(dsn)
    try:
        rows = await conn.fetch(
            "select table_name from information_schema.tables"
            " where table_schema = 'public'"
        )
    finally:
        await conn.close()
    return {row["table_name"] for row in rows}


async def fetch_ledger(dsn: str) -> list[tuple[int, str]]:
    conn = await connect(dsn)
    try:
        rows = await conn.fetch(
            "select version, name from schema_migrations order by version"
        )
    finally:
        await conn.close()
    return [(row["version"], row["name"]) for row in rows]


def copy_migrations(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    return directory


async def test_apply_migrations_on_an_empty_database_creates_the_tables(
    empty_database_url: str,
) -> None:
    tables_before = await fetch_tables(empty_database_url)

    applied = await apply_migrations(empty_database_url)

    assert tables_before == set()
    assert applied == ["0001_initial"]
    assert await fetch_tables(empty_database_url) == STORE_TABLES
    assert await fetch_ledger(empty_database_url) == [(1, "0001_initial")]


async def test_apply_migrations_again_applies_nothing(empty_database_url: str) -> None:
    await apply_migrations(empty_database_url)

    applied = await apply_migrations(empty_database_url)

    assert applied == []
    assert await fetch_ledger(empty_database_url) == [(1, "0001_initial")]


async def test_apply_migrations_through_a_pool_applies_nothing_when_migrated(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        recorded = await conn.fetchval("select count(*) from schema_migrations")

    applied = await apply_migrations(db_pool)

    assert recorded == 1
    assert applied == []


async def test_concurrent_apply_migrations_record_each_migration_once(
    empty_database_url: str,
) -> None:
    runners = [apply_migrations(empty_database_url) for _ in range(2)]

    results = await asyncio.gather(*runners)

    assert sorted(results) == [[], ["0001_initial"]]
    assert await fetch_ledger(empty_database_url) == [(1, "0001_initial")]


async def test_apply_migrations_applies_only_a_newly_added_file(
    empty_database_url: str, tmp_path: Path
) -> None:
    directory = copy_migrations(tmp_path)
    await apply_migrations(empty_database_url, directory=directory)
    (directory / "0002_run_notes.sql").write_text(
        "alter table agent_runs add column note text;\n", encoding="utf-8"
    )

    applied = await apply_migrations(empty_database_url, directory=directory)

    assert applied == ["0002_run_notes"]
    assert await fetch_ledger(empty_database_url) == [
        (1, "0001_initial"),
        (2, "0002_run_notes"),
    ]


async def test_apply_migrations_refuses_a_file_changed_after_it_was_applied(
    empty_database_url: str, tmp_path: Path
) -> None:
    directory = copy_migrations(tmp_path)
    await apply_migrations(empty_database_url, directory=directory)
    edited = directory / "0001_initial.sql"
    edited.write_text(edited.read_text(encoding="utf-8") + "-- edited\n")

    with pytest.raises(MigrationError) as refused:
        await apply_migrations(empty_database_url, directory=directory)

    assert "0001_initial changed after it was applied" in str(refused.value)


async def test_failed_migration_is_not_recorded(
    empty_database_url: str, tmp_path: Path
) -> None:
    directory = copy_migrations(tmp_path)
    (directory / "0002_broken.sql").write_text(
        "create table half_done (id int);\nselect no_such_function();\n",
        encoding="utf-8",
    )

    with pytest.raises(asyncpg.UndefinedFunctionError):
        await apply_migrations(empty_database_url, directory=directory)

    assert await fetch_ledger(empty_database_url) == [(1, "0001_initial")]
    assert "half_done" not in await fetch_tables(empty_database_url)


def test_load_migrations_reads_numbered_sql_files_in_version_order(
    tmp_path: Path,
) -> None:
    (tmp_path / "0002_second.sql").write_text("select 2;\n", encoding="utf-8")
    (tmp_path / "0001_first.sql").write_text("select 1;\n", encoding="utf-8")
    (tmp_path / "notes.sql").write_text("select 0;\n", encoding="utf-8")
    (tmp_path / "0003_draft.txt").write_text("select 3;\n", encoding="utf-8")

    migrations = load_migrations(tmp_path)

    assert [(m.version, m.name) for m in migrations] == [
        (1, "0001_first"),
        (2, "0002_second"),
    ]
    assert migrations[0].sql == "select 1;\n"
    assert migrations[0].checksum == hashlib.sha256(b"select 1;\n").hexdigest()
