"""Claims about store.pool: JSON as Python objects, failures as StoreUnavailable."""

import asyncio

import asyncpg
import pytest

from store.errors import StoreUnavailable
from store.pool import (
    connect,
    connection,
    create_pool,
    describe_dsn,
    set_json_codecs,
    transaction,
)
from tests.harness.postgres import PostgresServer
from tests.store.builders import insert_agent

UNREACHABLE_DSN = "postgresql://x:secretpw@127.0.0.1:1/db"


async def test_create_pool_on_an_unreachable_server_names_it_without_password() -> None:
    dsn = UNREACHABLE_DSN

    with pytest.raises(StoreUnavailable) as refused:
        await create_pool(dsn)

    assert "127.0.0.1:1/db" in str(refused.value)
    assert "secretpw" not in str(refused.value)
    assert refused.value.retryable


async def test_create_pool_decodes_json_columns_into_python_objects(
    postgres_server: PostgresServer,
) -> None:
    pool = await create_pool(postgres_server.admin_dsn, min_size=1, max_size=1)

    try:
        value = await pool.fetchval("""select '{"amount": [1, 2]}'::jsonb""")
    finally:
        await pool.close()

    assert value == {"amount": [1, 2]}


async def test_connect_on_an_unreachable_server_names_it_without_password() -> None:
    dsn = UNREACHABLE_DSN

    with pytest.raises(StoreUnavailable) as refused:
        await connect(dsn)

    assert "127.0.0.1:1/db" in str(refused.value)
    assert "secretpw" not in str(refused.value)


async def test_connect_gives_a_connection_with_json_codecs(
    postgres_server: PostgresServer,
) -> None:
    conn = await connect(postgres_server.admin_dsn)

    try:
        value = await conn.fetchval("select $1::json", {"network": "sepolia"})
    finally:
        await conn.close()

    assert value == {"network": "sepolia"}


async def test_set_json_codecs_makes_json_and_jsonb_round_trip(
    postgres_server: PostgresServer,
) -> None:
    conn = await asyncpg.connect(postgres_server.admin_dsn)

    try:
        await set_json_codecs(conn)
        values = await conn.fetchrow(
            "select $1::json as plain, $2::jsonb as binary", [1, "a"], {"k": None}
        )
    finally:
        await conn.close()

    assert (values["plain"], values["binary"]) == ([1, "a"], {"k": None})


async def terminate_backend(dsn: str, pid: int, *, once_busy: bool = False) -> None:
    """End a session from the server side, as a restart or a failover would."""
    admin = await connect(dsn)
    try:
        while once_busy and await admin.fetchval(
            "select state <> 'active' from pg_stat_activity where pid = $1", pid
        ):
            await asyncio.sleep(0.01)
        await admin.execute("select pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_connection_lost_mid_statement_raises_store_unavailable(
    db_pool: asyncpg.Pool, database_url: str
) -> None:
    statement = "select pg_sleep(30)"

    with pytest.raises(StoreUnavailable):
        async with connection(db_pool) as conn:
            sleeping = asyncio.create_task(conn.execute(statement))
            await terminate_backend(database_url, conn.get_server_pid(), once_busy=True)
            await sleeping


async def test_connection_lost_between_statements_raises_store_unavailable(
    db_pool: asyncpg.Pool, database_url: str
) -> None:
    closed = asyncio.Event()

    with pytest.raises(StoreUnavailable):
        async with connection(db_pool) as conn:
            conn.add_termination_listener(lambda _: closed.set())
            await terminate_backend(database_url, conn.get_server_pid())
            await asyncio.wait_for(closed.wait(), timeout=5)
            await conn.fetchval("select 1")


async def test_connection_misused_by_the_caller_keeps_the_asyncpg_error(
    db_pool: asyncpg.Pool,
) -> None:
    with pytest.raises(asyncpg.InterfaceError, match="already started"):
        async with connection(db_pool) as conn:
            started = conn.transaction()
            await started.start()
            await started.start()


async def test_transaction_commits_on_success_and_rolls_back_on_error(
    db_pool: asyncpg.Pool,
) -> None:
    failure = RuntimeError("step failed")

    async with transaction(db_pool) as conn:
        await insert_agent(conn, "agent_kept")
    with pytest.raises(RuntimeError):
        async with transaction(db_pool) as conn:
            await insert_agent(conn, "agent_dropped")
            raise failure
    agents = await db_pool.fetch("select agent_id from agents")

    assert [row["agent_id"] for row in agents] == ["agent_kept"]


@pytest.mark.parametrize(
    ("dsn", "described"),
    [
        (
            "postgresql://alice:secretpw@db.internal:5432/rails",
            "db.internal:5432/rails",
        ),
        ("postgresql://alice@db.internal/rails", "db.internal/rails"),
        ("postgres://alice:secretpw@h1:5432,h2:5433/rails", "h1:5432,h2:5433/rails"),
        ("postgresql://alice:se%40cretpw@db.internal/rails", "db.internal/rails"),
        ("postgresql://alice:secret@pw@db.internal/rails", "db.internal/rails"),
        (
            "postgresql:///rails?host=/run/postgresql&user=alice&password=secretpw",
            "/run/postgresql/rails",
        ),
        ("postgresql:///rails", "localhost/rails"),
    ],
)
def test_describe_dsn_names_the_server_never_the_credentials(
    dsn: str, described: str
) -> None:
    description = describe_dsn(dsn)

    assert description == described
    assert "alice" not in description
    assert "secret" not in description


@pytest.mark.parametrize("reserved", ["/", "?", "#", "@pw/"])
def test_describe_dsn_with_an_unencoded_password_hides_the_credentials(
    reserved: str,
) -> None:
    dsn = f"postgresql://alice:secret{reserved}pw@db.internal/rails"

    description = describe_dsn(dsn)

    assert "alice" not in description
    assert "secret" not in description
    assert "pw" not in description
