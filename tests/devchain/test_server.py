"""DevChain answers starknet-py's real FullNodeClient as a Starknet node would."""

import logging
from typing import Any

import aiohttp
import pytest
from starknet_py.hash.selector import get_selector_from_name
from starknet_py.net.client_errors import ClientError
from starknet_py.net.client_models import (
    PriceUnit,
    TransactionExecutionStatus,
    TransactionFinalityStatus,
    TransactionStatus,
)
from starknet_py.net.full_node_client import FullNodeClient

from devchain.server import DevChain
from tests.devchain.helpers import (
    AMOUNT,
    FINALITY_SECONDS,
    PAYER,
    PRE_CONFIRM_SECONDS,
    RECIPIENT,
    SEQUENCER,
    STRK,
    pay,
)

TRANSFER = get_selector_from_name("Transfer")
UNKNOWN_TX = "0x2f548e5dbe17e9e48e509ccdf11261fca100c3c8cf71b58d176f206f263de73"
OTHER_TOKEN = "0x33068f6539f8e6e6b131e6b2b814e6c34a5224bc66947c47dab9dfee93b35fb"


async def _post(url: str, body: Any) -> Any:
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body) as response:
            return await response.json()


async def test_transfer_goes_received_pre_confirmed_accepted(
    dev_chain: DevChain,
) -> None:
    client = FullNodeClient(node_url=dev_chain.url)
    await client.get_chain_id()

    submitted = await pay(dev_chain.url)
    received = await client.get_transaction_status(submitted.tx_hash)
    with pytest.raises(ClientError) as no_receipt:
        await client.get_transaction_receipt(submitted.tx_hash)
    await submitted.wait_past(PRE_CONFIRM_SECONDS)
    pre_status = await client.get_transaction_status(submitted.tx_hash)
    pre_receipt = await client.get_transaction_receipt(submitted.tx_hash)
    await submitted.wait_past(FINALITY_SECONDS)
    final_status = await client.get_transaction_status(submitted.tx_hash)
    final_receipt = await client.get_transaction_receipt(submitted.tx_hash)

    assert received.finality_status is TransactionStatus.RECEIVED
    assert received.execution_status is None
    assert no_receipt.value.code == 29
    assert pre_status.finality_status is TransactionStatus.PRE_CONFIRMED
    assert pre_status.execution_status is TransactionExecutionStatus.SUCCEEDED
    assert pre_receipt.finality_status is TransactionFinalityStatus.PRE_CONFIRMED
    assert pre_receipt.block_hash is None
    assert final_status.finality_status is TransactionStatus.ACCEPTED_ON_L2
    assert final_receipt.finality_status is TransactionFinalityStatus.ACCEPTED_ON_L2
    assert final_receipt.execution_status is TransactionExecutionStatus.SUCCEEDED
    assert final_receipt.block_hash is not None
    assert final_receipt.block_number == pre_receipt.block_number


async def test_receipt_has_unkeyed_strk_transfer_then_fee_last(
    dev_chain: DevChain,
) -> None:
    client = FullNodeClient(node_url=dev_chain.url)
    submitted = await pay(dev_chain.url, amount=2**130 + AMOUNT)

    await submitted.wait_past(FINALITY_SECONDS)
    receipt = await client.get_transaction_receipt(submitted.tx_hash)

    payment, fee = receipt.events[0], receipt.events[-1]
    assert receipt.transaction_hash == int(submitted.tx_hash, 16)
    assert payment.from_address == int(STRK, 16)
    assert payment.keys == [TRANSFER]
    assert payment.data == [int(PAYER, 16), int(RECIPIENT, 16), AMOUNT, 4]
    assert receipt.actual_fee.unit is PriceUnit.FRI
    assert fee.from_address == int(STRK, 16)
    assert fee.data == [
        int(PAYER, 16),
        int(SEQUENCER, 16),
        receipt.actual_fee.amount,
        0,
    ]
    assert receipt.execution_resources.l2_gas > 0


async def test_other_token_emits_keyed_transfer(dev_chain: DevChain) -> None:
    client = FullNodeClient(node_url=dev_chain.url)
    submitted = await pay(dev_chain.url, token=OTHER_TOKEN)

    await submitted.wait_past(PRE_CONFIRM_SECONDS)
    receipt = await client.get_transaction_receipt(submitted.tx_hash)

    payment = receipt.events[0]
    assert payment.from_address == int(OTHER_TOKEN, 16)
    assert payment.keys == [TRANSFER, int(PAYER, 16), int(RECIPIENT, 16)]
    assert payment.data == [AMOUNT, 0]


async def test_block_numbers_increase_with_each_transfer(dev_chain: DevChain) -> None:
    client = FullNodeClient(node_url=dev_chain.url)
    first = await pay(dev_chain.url)
    second = await pay(dev_chain.url)

    await second.wait_past(PRE_CONFIRM_SECONDS)
    first_receipt = await client.get_transaction_receipt(first.tx_hash)
    second_receipt = await client.get_transaction_receipt(second.tx_hash)

    assert second_receipt.block_number > first_receipt.block_number


@pytest.mark.parametrize(
    "method", ["get_transaction_receipt", "get_transaction_status"]
)
async def test_unknown_transaction_is_not_found(
    dev_chain: DevChain, method: str
) -> None:
    client = FullNodeClient(node_url=dev_chain.url)

    with pytest.raises(ClientError) as error:
        await getattr(client, method)(UNKNOWN_TX)

    assert error.value.code == 29
    assert "Transaction hash not found" in error.value.message


@pytest.mark.parametrize(
    ("network", "chain_id"),
    [("sepolia", "0x534e5f5345504f4c4941"), ("mainnet", "0x534e5f4d41494e")],
)
async def test_chain_id_matches_network(network: str, chain_id: str) -> None:
    chain = DevChain(network=network)  # type: ignore[arg-type]
    url = await chain.start()

    try:
        answer = await FullNodeClient(node_url=url).get_chain_id()
    finally:
        await chain.stop()

    assert answer == chain_id


async def test_unknown_method_is_method_not_found(dev_chain: DevChain) -> None:
    body = {"jsonrpc": "2.0", "id": 7, "method": "starknet_blockHashAndNumber"}

    reply = await _post(dev_chain.url, body)

    assert reply == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {"code": -32601, "message": "Method not found"},
    }


async def test_batch_answers_each_request_with_its_id(dev_chain: DevChain) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "starknet_specVersion", "params": []},
        {"jsonrpc": "2.0", "id": "b", "method": "starknet_chainId", "params": {}},
        {"jsonrpc": "2.0", "id": 3, "method": "nope"},
    ]

    replies = await _post(dev_chain.url, batch)

    assert [reply["id"] for reply in replies] == [1, "b", 3]
    assert replies[0]["result"] == "0.10.2"
    assert replies[1]["result"] == "0x534e5f5345504f4c4941"
    assert replies[2]["error"]["code"] == -32601


async def test_start_warns_it_is_a_simulator(caplog: pytest.LogCaptureFixture) -> None:
    chain = DevChain()

    with caplog.at_level(logging.WARNING, logger="devchain.server"):
        url = await chain.start()
    await chain.stop()

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "not a real starknet chain" in warnings[0].getMessage()
    assert url in warnings[0].getMessage()


def test_finality_before_pre_confirmation_is_refused() -> None:
    with pytest.raises(ValueError):
        DevChain(finality_seconds=0.5, pre_confirm_seconds=1.0)
