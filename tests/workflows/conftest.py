"""Fixtures of the workflow tests: a worker with real activities on each server."""

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

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
    async with _rails_on(
        temporal_time_env, db_pool, starknet_node, starkzap_executor
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
    async with _rails_on(
        temporal_dev_env, db_pool, starknet_node, starkzap_executor
    ) as rails:
        yield rails


def _rails_on(
    env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    node: StarknetNode,
    executor: StarkzapExecutor,
) -> AbstractAsyncContextManager[Rails]:
    return running_rails(
        env, pool, rpc_urls=[node.url], executor_url=executor.url, executor_key=API_KEY
    )
