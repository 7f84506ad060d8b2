"""Claims about store.agents: one row per agent, terms replaced, actions by type."""

import asyncpg
import pytest

from store.agents import get_agent, list_agents, supports_action, upsert_agent
from store.records import AgentSpec, AgentType
from tests.factories import RECIPIENT
from tests.store.builders import AGENT_ID, WALLET, insert_agent, make_agent


async def test_upsert_agent_creates_the_agent(db_pool: asyncpg.Pool) -> None:
    spec = make_agent(tongo_recipient="Tg_steward")

    async with db_pool.acquire() as conn:
        created = await upsert_agent(conn, spec)
        found = await get_agent(conn, AGENT_ID)

    assert created.model_dump(include=set(AgentSpec.model_fields)) == spec.model_dump()
    assert found == created


async def test_upsert_agent_again_replaces_the_terms_and_keeps_created_at(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        first = await insert_agent(conn)

        second = await upsert_agent(
            conn, make_agent(price_amount=250, service_wallet=WALLET)
        )

    assert (second.price_amount, second.service_wallet) == (250, WALLET)
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at


async def test_get_agent_of_unknown_id_returns_none(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        found = await get_agent(conn, "agent_unknown")

    assert found is None


async def test_list_agents_returns_all_or_one_type_by_id(
    db_pool: asyncpg.Pool,
) -> None:
    async with db_pool.acquire() as conn:
        await insert_agent(conn, "agent_c", agent_type=AgentType.SWAP_RUNNER)
        await insert_agent(conn, "agent_a", agent_type=AgentType.STAKING_STEWARD)
        await insert_agent(conn, "agent_b", agent_type=AgentType.SWAP_RUNNER)

        everyone = await list_agents(conn)
        swappers = await list_agents(conn, agent_type=AgentType.SWAP_RUNNER)

    assert [agent.agent_id for agent in everyone] == ["agent_a", "agent_b", "agent_c"]
    assert [agent.agent_id for agent in swappers] == ["agent_b", "agent_c"]
    assert {agent.service_wallet for agent in everyone} == {RECIPIENT}


@pytest.mark.parametrize(
    ("agent_type", "action", "supported"),
    [
        (AgentType.STAKING_STEWARD, "stake", True),
        (AgentType.STAKING_STEWARD, "compound", True),
        (AgentType.STAKING_STEWARD, "swap", False),
        (AgentType.TREASURY_DISPATCHER, "dispatch_batch", True),
        (AgentType.TREASURY_DISPATCHER, "sweep_idle", True),
        (AgentType.TREASURY_DISPATCHER, "stake", False),
        (AgentType.SWAP_RUNNER, "swap", True),
        (AgentType.SWAP_RUNNER, "dca_tick", True),
        (AgentType.SWAP_RUNNER, "dispatch_batch", False),
    ],
)
def test_supports_action_answers_by_agent_type(
    agent_type: AgentType, action: str, supported: bool
) -> None:
    answer = supports_action(agent_type, action)

    assert answer is supported
