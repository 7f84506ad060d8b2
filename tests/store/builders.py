"""Builders of store inputs for the store tests: claims, agents and runs."""

import hashlib
from typing import Any

import asyncpg

from store.agents import upsert_agent
from store.payments import claim_payment
from store.records import (
    AgentRecord,
    AgentSpec,
    AgentType,
    NewRun,
    PaymentClaim,
    PaymentRecord,
    RunRecord,
)
from store.runs import create_run
from tests.factories import PAYER_TONGO, RECIPIENT

WALLET = "0x5e11e7a1e7b0c5d3a4f1d2c3b4a5968778695a4b3c2d1e0f1a2b3c4d5e6f7a8"
OTHER_WALLET = "0x7a11e7a1e7b0c5d3a4f1d2c3b4a5968778695a4b3c2d1e0f1a2b3c4d5e6f7a9"
AGENT_ID = "agent_steward"


def digest(text: str) -> str:
    """A proof digest standing for a payload called ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()


def make_claim(replay_key: str = "rk_1", **overrides: Any) -> PaymentClaim:
    """A claim of 100 STRK units to RECIPIENT, its challenge named after the key."""
    fields: dict[str, Any] = {
        "replay_key": replay_key,
        "challenge_id": f"ch_{replay_key}",
        "proof_digest": digest(f"payload of {replay_key}"),
        "payer": PAYER_TONGO,
        "recipient": RECIPIENT,
        "token": "STRK",
        "amount": 100,
        "network": "sepolia",
        "settlement_tx_hash": None,
    }
    return PaymentClaim(**(fields | overrides))


async def insert_payment(
    conn: asyncpg.Connection, replay_key: str = "rk_1", **overrides: Any
) -> PaymentRecord:
    """A pending payment in the table."""
    outcome = await claim_payment(conn, make_claim(replay_key, **overrides))
    return outcome.payment


def make_agent(agent_id: str = AGENT_ID, **overrides: Any) -> AgentSpec:
    """A staking steward charging 100 STRK, paid to RECIPIENT."""
    fields: dict[str, Any] = {
        "agent_id": agent_id,
        "agent_type": AgentType.STAKING_STEWARD,
        "service_wallet": RECIPIENT,
        "price_amount": 100,
        "price_token": "STRK",
        "network": "sepolia",
    }
    return AgentSpec(**(fields | overrides))


async def insert_agent(
    conn: asyncpg.Connection, agent_id: str = AGENT_ID, **overrides: Any
) -> AgentRecord:
    """An agent in the table."""
    return await upsert_agent(conn, make_agent(agent_id, **overrides))


def make_run(**overrides: Any) -> NewRun:
    """A billable ``stake`` run of AGENT_ID for WALLET."""
    fields: dict[str, Any] = {
        "agent_id": AGENT_ID,
        "operator_wallet": WALLET,
        "action": "stake",
        "params": {"amount": "100"},
        "billable": True,
    }
    return NewRun(**(fields | overrides))


async def insert_run(conn: asyncpg.Connection, **overrides: Any) -> RunRecord:
    """A run of ``make_run`` in the table; its agent must be inserted first."""
    return await create_run(conn, make_run(**overrides))
