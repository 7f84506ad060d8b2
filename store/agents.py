"""Marketplace agents: their type, the actions they support, price and wallet."""

import logging

import asyncpg

from store.records import AgentRecord, AgentSpec, AgentType

logger = logging.getLogger(__name__)

SUPPORTED_ACTIONS: dict[AgentType, tuple[str, ...]] = {
    AgentType.STAKING_STEWARD: ("stake", "unstake", "rebalance", "compound"),
    AgentType.TREASURY_DISPATCHER: ("dispatch_batch", "sweep_idle"),
    AgentType.SWAP_RUNNER: ("swap", "dca_tick"),
}

_UPSERT = """
insert into agents (
    agent_id, agent_type, service_wallet, price_amount, price_token,
    tongo_recipient, network
) values ($1, $2, $3, $4, $5, $6, $7)
on conflict (agent_id) do update set
    agent_type = excluded.agent_type,
    service_wallet = excluded.service_wallet,
    price_amount = excluded.price_amount,
    price_token = excluded.price_token,
    tongo_recipient = excluded.tongo_recipient,
    network = excluded.network,
    updated_at = now()
returning *
"""


def supports_action(agent_type: AgentType, action: str) -> bool:
    """Whether an agent of this type can run ``action``."""
    return action in SUPPORTED_ACTIONS[agent_type]


async def upsert_agent(conn: asyncpg.Connection, agent: AgentSpec) -> AgentRecord:
    """Create the agent, or replace its terms; ``created_at`` stays the first."""
    row = await conn.fetchrow(
        _UPSERT,
        agent.agent_id,
        agent.agent_type,
        agent.service_wallet,
        agent.price_amount,
        agent.price_token,
        agent.tongo_recipient,
        agent.network,
    )
    logger.info("agent saved agent_id=%s type=%s", agent.agent_id, agent.agent_type)
    return AgentRecord.from_row(row)


async def get_agent(conn: asyncpg.Connection, agent_id: str) -> AgentRecord | None:
    """The agent with this id, if any."""
    row = await conn.fetchrow("select * from agents where agent_id = $1", agent_id)
    return None if row is None else AgentRecord.from_row(row)


async def list_agents(
    conn: asyncpg.Connection, *, agent_type: AgentType | None = None
) -> list[AgentRecord]:
    """All agents, or those of one type, by id."""
    rows = await conn.fetch(
        "select * from agents where ($1::text is null or agent_type = $1)"
        " order by agent_id",
        agent_type,
    )
    return [AgentRecord.from_row(row) for row in rows]
