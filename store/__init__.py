"""Postgres store of the payment rails: payments, runs, event log, keys, agents.

Repository functions take an ``asyncpg.Connection`` first, so a caller can make
one state transition one transaction (``store.pool.transaction``). Reads return
None for a missing row; changes raise ``store.errors.NotFound``.
"""
