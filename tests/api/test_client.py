"""The Python client against the real API: 402, pay, retry, follow until done."""

import asyncio
import secrets

import pytest

from client import AsyncX402Client, Payment, PaymentRefused, RunTimeout, X402Client
from protocol.models import Challenge
from tests.api.stack import Stack
from tests.factories import PAYER_TONGO
from tests.harness.executor import StarkzapExecutor
from tests.harness.starknet_node import (
    StarknetNode,
    Transfer,
    accepted_on_l2,
    pre_confirmed,
    reverted,
)


class LocalChainPayer:
    """Pays by putting a transfer on the local node: what a wallet would do."""

    def __init__(self, node: StarknetNode, *, pending_checks: int = 0) -> None:
        self.node = node
        self.pending_checks = pending_checks
        self.paid: list[str] = []

    def pay_now(self, challenge: Challenge) -> Payment:
        tx_hash = hex(secrets.randbits(240))
        transfer = Transfer(to=challenge.recipient, amount=int(challenge.min_amount))
        steps = [pre_confirmed(transfer)] * self.pending_checks
        self.node.script(tx_hash, *steps, accepted_on_l2(transfer))
        self.paid.append(tx_hash)
        return Payment(
            tongo_address=PAYER_TONGO,
            amount=challenge.min_amount,
            settlement_tx_hash=tx_hash,
        )


class AsyncPayer(LocalChainPayer):
    async def pay(self, challenge: Challenge) -> Payment:
        return self.pay_now(challenge)


class SyncPayer(LocalChainPayer):
    def pay(self, challenge: Challenge) -> Payment:
        return self.pay_now(challenge)


class RevertingPayer(AsyncPayer):
    async def pay(self, challenge: Challenge) -> Payment:
        payment = self.pay_now(challenge)
        self.node.script(payment.settlement_tx_hash or "", reverted())
        return payment


async def test_async_client_pays_and_returns_the_completed_run(
    stack: Stack, starknet_node: StarknetNode, starkzap_executor: StarkzapExecutor
) -> None:
    payer = AsyncPayer(starknet_node)

    async with AsyncX402Client(stack.url, stack.api_key, payer) as client:
        run = await client.create_run("steward", "stake", {"amount": "100"})

    assert run["status"] == "completed"
    assert run["payment_ref"] is not None
    assert len(payer.paid) == 1
    assert starkzap_executor.executions_for(run["run_id"]) == 1


async def test_async_client_follows_a_pending_payment_until_the_run_ends(
    stack: Stack, starknet_node: StarknetNode
) -> None:
    payer = AsyncPayer(starknet_node, pending_checks=4)

    async with AsyncX402Client(
        stack.url, stack.api_key, payer, poll_interval=0.2
    ) as client:
        run = await client.create_run("steward", "stake", {"amount": "100"})

    assert run["status"] == "completed"


async def test_sync_client_pays_and_returns_the_completed_run(
    stack: Stack, starknet_node: StarknetNode
) -> None:
    payer = SyncPayer(starknet_node)

    def create() -> dict:
        with X402Client(stack.url, stack.api_key, payer) as client:
            return client.create_run("steward", "stake", {"amount": "100"})

    run = await asyncio.to_thread(create)

    assert run["status"] == "completed"


async def test_client_raises_payment_refused_for_a_reverted_payment(
    stack: Stack, starknet_node: StarknetNode
) -> None:
    payer = RevertingPayer(starknet_node)

    async with AsyncX402Client(stack.url, stack.api_key, payer) as client:
        with pytest.raises(PaymentRefused) as refused:
            await client.create_run("steward", "stake", {"amount": "100"})

    assert refused.value.code == "SETTLEMENT_FAILED"
    assert len(payer.paid) == 1


async def test_client_gives_up_waiting_with_the_run_id(
    stack: Stack, starknet_node: StarknetNode
) -> None:
    payer = AsyncPayer(starknet_node, pending_checks=50)

    async with AsyncX402Client(
        stack.url, stack.api_key, payer, poll_interval=0.2
    ) as client:
        with pytest.raises(RunTimeout) as timed_out:
            await client.create_run(
                "steward", "stake", {"amount": "100"}, wait_seconds=1
            )

    assert timed_out.value.run_id.startswith("run_")
    assert timed_out.value.last_status == "pending_payment"
