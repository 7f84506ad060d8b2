"""Fixtures of the end-to-end API tests: uvicorn, a worker, real services."""

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.api.stack import Stack, running_api, running_worker, seed, stack_settings
from tests.harness.executor import API_KEY, StarkzapExecutor
from tests.harness.starknet_node import StarknetNode


@pytest.fixture
async def stack(
    temporal_dev_env: WorkflowEnvironment,
    database_url: str,
    starknet_node: StarknetNode,
    starkzap_executor: StarkzapExecutor,
) -> AsyncIterator[Stack]:
    """The API on a free port, a worker, the dev server, Postgres, node, executor."""
    settings = stack_settings(
        database_url=database_url,
        temporal_address=temporal_dev_env.client.service_client.config.target_host,
        rpc_url=starknet_node.url,
    )
    keys = await seed(settings)
    async with (
        running_worker(temporal_dev_env, settings, starkzap_executor.url, API_KEY),
        running_api(settings) as url,
    ):
        yield Stack(
            url=url,
            settings=settings,
            paid_agent="steward",
            free_agent="free-swapper",
            **keys,
        )
