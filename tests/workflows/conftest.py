"""Fixtures of the workflow tests: a worker with real activities on each server."""

from collections.abc import AsyncIterator

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.harness.executor import API_KEY, StarkzapExecutor
from tests.harness.starknet_node import StarknetNode
from tests.workflows.rails import Rails, running_rails


@pytest.fixture
async def rails(
    temporal_time_env: WorkflowEnvironment,
    db_pool: asyncpg.Pool,
    starknet_node: StarknetNode,
    starkzap_executor: StarkzapExecutor,
) -> AsyncIterator[Rails]:
    """Time-skipping server, real Postgres, the local node and the executor."""
    async with running_rails(
        temporal_time_env,
        db_pool,
        rpc_urls=[starknet_node.url],
        executor_url=starkzap_executor.url,
        executor_key=API_KEY,
    ) as rails:
        yield rails


@pytest.fixture
async def dev_rails(
    temporal_dev_env: WorkflowEnvironment,
    db_pool: asyncpg.Pool,
    starknet_node: StarknetNode,
    starkzap_executor: StarkzapExecutor,
) -> AsyncIterator[Rails]:
    """The same parts on the dev server, where time passes for real."""
    async with running_rails(
        temporal_dev_env,
        db_pool,
        rpc_urls=[starknet_node.url],
        executor_url=starkzap_executor.url,
        executor_key=API_KEY,
    ) as rails:
        yield rails
