"""Claims about store.api_keys: the plaintext is shown once, only its hash is kept."""

import hashlib

import asyncpg
import pytest

from store.api_keys import (
    KEY_PREFIX,
    authenticate_api_key,
    create_api_key,
    hash_api_key,
    list_api_keys,
    revoke_api_key,
)
from store.errors import NotFound
from tests.store.builders import OTHER_WALLET, WALLET


async def test_create_api_key_stores_only_the_sha256_of_the_plaintext(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        plaintext, key = await create_api_key(conn, wallet=WALLET, label="ci")

        row = await conn.fetchrow("select * from api_keys")

    assert plaintext.startswith(KEY_PREFIX)
    assert (key.wallet, key.label, key.is_admin) == (WALLET, "ci", False)
    assert row["key_hash"] == hashlib.sha256(plaintext.encode()).hexdigest()
    assert all(plaintext not in str(value) for value in row.values())
    assert "key_hash" not in type(key).model_fields


async def test_authenticate_api_key_finds_the_live_key(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        plaintext, key = await create_api_key(conn, wallet=WALLET, is_admin=True)

        found = await authenticate_api_key(conn, plaintext)
        unknown = await authenticate_api_key(conn, KEY_PREFIX + "not-a-key")

    assert found == key
    assert unknown is None


async def test_revoked_api_key_does_not_authenticate(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        plaintext, key = await create_api_key(conn, wallet=WALLET)
        revoked = await revoke_api_key(conn, key.key_id)

        found = await authenticate_api_key(conn, plaintext)

    assert revoked.revoked_at is not None
    assert found is None


async def test_revoke_api_key_again_keeps_the_first_revocation_time(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        _, key = await create_api_key(conn, wallet=WALLET)
        first = await revoke_api_key(conn, key.key_id)

        again = await revoke_api_key(conn, key.key_id)

    assert again.revoked_at == first.revoked_at


async def test_revoke_api_key_of_unknown_id_raises_not_found(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        with pytest.raises(NotFound):
            await revoke_api_key(conn, "key_unknown")


async def test_list_api_keys_returns_revoked_keys_too_oldest_first(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        _, first = await create_api_key(conn, wallet=WALLET, label="first")
        _, other = await create_api_key(conn, wallet=OTHER_WALLET, label="other")
        _, last = await create_api_key(conn, wallet=WALLET, label="last")
        await revoke_api_key(conn, first.key_id)

        everyone = await list_api_keys(conn)
        mine = await list_api_keys(conn, wallet=WALLET)

    assert [key.label for key in everyone] == ["first", "other", "last"]
    assert [key.key_id for key in mine] == [first.key_id, last.key_id]
    assert mine[0].revoked_at is not None


def test_hash_api_key_is_the_sha256_hex_of_the_key() -> None:
    plaintext = KEY_PREFIX + "example"

    hashed = hash_api_key(plaintext)

    assert hashed == hashlib.sha256(b"x402k_example").hexdigest()
