"""API keys that identify operator wallets; only their sha256 is ever stored."""

import hashlib
import logging
import secrets

import asyncpg

from store.errors import NotFound
from store.records import ApiKeyRecord

logger = logging.getLogger(__name__)

KEY_PREFIX = "x402k_"

_COLUMNS = "key_id, wallet, label, is_admin, created_at, revoked_at"


def hash_api_key(plaintext: str) -> str:
    """sha256 hex of a key: what the table holds instead of the key."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


async def create_api_key(
    conn: asyncpg.Connection,
    *,
    wallet: str,
    label: str | None = None,
    is_admin: bool = False,
) -> tuple[str, ApiKeyRecord]:
    """A new key for ``wallet``; the plaintext is returned now and never again."""
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = f"key_{secrets.token_hex(8)}"

    row = await conn.fetchrow(
        "insert into api_keys (key_id, key_hash, wallet, label, is_admin)"
        f" values ($1, $2, $3, $4, $5) returning {_COLUMNS}",
        key_id,
        hash_api_key(plaintext),
        wallet,
        label,
        is_admin,
    )
    logger.info("api key created key_id=%s admin=%s", key_id, is_admin)
    return plaintext, ApiKeyRecord.from_row(row)


async def authenticate_api_key(
    conn: asyncpg.Connection, plaintext: str
) -> ApiKeyRecord | None:
    """The live key matching ``plaintext``; None when unknown or revoked.

    Looking up the hash leaks no timing about the key itself, so no
    constant-time comparison is needed here.
    """
    row = await conn.fetchrow(
        f"select {_COLUMNS} from api_keys where key_hash = $1 and revoked_at is null",
        hash_api_key(plaintext),
    )
    return None if row is None else ApiKeyRecord.from_row(row)


async def revoke_api_key(conn: asyncpg.Connection, key_id: str) -> ApiKeyRecord:
    """Revoke a key; revoking it again keeps the first revocation time."""
    row = await conn.fetchrow(
        "update api_keys set revoked_at = coalesce(revoked_at, now())"
        f" where key_id = $1 returning {_COLUMNS}",
        key_id,
    )
    if row is None:
        raise NotFound(f"no api key {key_id}")

    logger.info("api key revoked key_id=%s", key_id)
    return ApiKeyRecord.from_row(row)


async def list_api_keys(
    conn: asyncpg.Connection, *, wallet: str | None = None
) -> list[ApiKeyRecord]:
    """Keys, revoked ones included, oldest first; one wallet's if given."""
    rows = await conn.fetch(
        f"select {_COLUMNS} from api_keys where ($1::text is null or wallet = $1)"
        " order by created_at, key_id",
        wallet,
    )
    return [ApiKeyRecord.from_row(row) for row in rows]
