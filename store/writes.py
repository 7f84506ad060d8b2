"""Guarded writes: a savepoint, and constraint violations turned into store errors."""

from collections.abc import Callable, Mapping

import asyncpg

from store.errors import StoreError

# Constraint name -> the error its violation means for this write.
Violations = Mapping[str, Callable[[], StoreError]]


async def write_row(
    conn: asyncpg.Connection, query: str, *args: object, violations: Violations
) -> asyncpg.Record | None:
    """Run one writing statement; a named violation raises its store error.

    The savepoint keeps a caller's surrounding transaction usable after a refused
    write, so it can still record why the write was refused.
    """
    try:
        async with conn.transaction():
            return await conn.fetchrow(query, *args)
    except asyncpg.IntegrityConstraintViolationError as error:
        make_error = violations.get(error.constraint_name or "")
        if make_error is None:
            raise
        raise make_error() from error
