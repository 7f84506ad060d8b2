"""A started chain simulator with a short timeline, fresh for each test."""

from collections.abc import AsyncIterator

import pytest

from devchain.server import DevChain
from tests.devchain.helpers import FINALITY_SECONDS, PRE_CONFIRM_SECONDS


@pytest.fixture
async def dev_chain() -> AsyncIterator[DevChain]:
    """A Sepolia simulator on a free port, stopped after the test."""
    chain = DevChain(
        finality_seconds=FINALITY_SECONDS, pre_confirm_seconds=PRE_CONFIRM_SECONDS
    )
    await chain.start()
    yield chain
    await chain.stop()
