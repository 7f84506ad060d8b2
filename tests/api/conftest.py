"""Fixtures of the end-to-end API tests: uvicorn, a worker, real services."""

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.api.stack import Stack, running_stack
from tests.harness.executor import StarkzapExecutor
from tests.harness.starknet_node import StarknetNode

SMALL_RATE_LIMIT = 3


@pytest.fixture
async def stack(
    temporal_dev_env: WorkflowEnvironment,
    database_url: str,
    starknet_node: StarknetNode,
    starkzap_executor: StarkzapExecutor,
) -> AsyncIterator[Stack]:
    """The API on a free port, a worker, the dev server, Postgres, node, executor."""
    async with running_stack(
        temporal_dev_env, database_url, starknet_node, starkzap_executor
    ) as running:
        yield running


@pytest.fixture
async def small_limit_stack(
    temporal_dev_env: WorkflowEnvironment,
    database_url: str,
    starknet_node: StarknetNode,
    starkzap_executor: StarkzapExecutor,
) -> AsyncIterator[Stack]:
    """A stack whose rate limit is SMALL_RATE_LIMIT requests a minute per scope."""
    async with running_stack(
        temporal_dev_env,
        database_url,
        starknet_node,
        starkzap_executor,
        x402_rate_limit_per_minute=SMALL_RATE_LIMIT,
    ) as running:
        yield running
