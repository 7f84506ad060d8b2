"""The local Starknet node answers starknet-py's real FullNodeClient as scripted."""

import json
import socket
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starknet_py.net.client_errors import ClientError
from starknet_py.net.client_models import (
    TransactionExecutionStatus,
    TransactionFinalityStatus,
    TransactionStatus,
)
from starknet_py.net.full_node_client import FullNodeClient
from starknet_py.net.http_client import IncompatibleRPCVersionWarning

from tests.harness.starknet_node import (
    APPROVAL_SELECTOR,
    PAYER,
    RECIPIENT,
    REVERT_REASON,
    SEQUENCER,
    SN_MAIN,
    STRK,
    TRANSFER_SELECTOR,
    USDC,
    Approval,
    StarknetNode,
    Step,
    Transfer,
    accepted_on_l1,
    accepted_on_l2,
    build_receipt,
    candidate,
    http_error,
    not_found,
    pre_confirmed,
    received,
    reverted,
    rpc_error,
)
from tests.paths import STARKNET_FIXTURES

TX = "0x3de677cc353d4b8738d248d094541bb1c13f395f0d743748c2bb7bb135e003c"


def client_of(node: StarknetNode) -> FullNodeClient:
    return FullNodeClient(node_url=node.url)


async def test_node_reports_unscripted_transaction_as_not_found(
    starknet_node: StarknetNode,
) -> None:
    client = client_of(starknet_node)

    with pytest.raises(ClientError) as receipt_error:
        await client.get_transaction_receipt(TX)
    with pytest.raises(ClientError) as status_error:
        await client.get_transaction_status(TX)

    assert receipt_error.value.code == 29
    assert status_error.value.code == 29
    assert "Transaction hash not found" in receipt_error.value.message


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (received(), TransactionStatus.RECEIVED),
        (candidate(), TransactionStatus.CANDIDATE),
    ],
)
async def test_node_reports_status_before_any_receipt_exists(
    starknet_node: StarknetNode, step: Step, expected: TransactionStatus
) -> None:
    starknet_node.script(TX, step)
    client = client_of(starknet_node)

    status = await client.get_transaction_status(TX)
    with pytest.raises(ClientError) as receipt_error:
        await client.get_transaction_receipt(TX)

    assert status.finality_status is expected
    assert status.execution_status is None
    assert receipt_error.value.code == 29


async def test_node_advances_one_step_per_receipt_request(
    starknet_node: StarknetNode,
) -> None:
    steps = (not_found(), pre_confirmed(), accepted_on_l2(), accepted_on_l1())
    starknet_node.script(TX, *steps)
    client = client_of(starknet_node)

    with pytest.raises(ClientError) as missing:
        await client.get_transaction_receipt(TX)
    receipts = [await client.get_transaction_receipt(TX) for _ in range(4)]

    assert missing.value.code == 29
    assert [receipt.finality_status for receipt in receipts] == [
        TransactionFinalityStatus.PRE_CONFIRMED,
        TransactionFinalityStatus.ACCEPTED_ON_L2,
        TransactionFinalityStatus.ACCEPTED_ON_L1,
        TransactionFinalityStatus.ACCEPTED_ON_L1,
    ]
    assert receipts[0].block_hash is None
    assert receipts[1].block_hash is not None
    assert starknet_node.count("getTransactionReceipt", TX) == 5


async def test_node_status_follows_the_latest_receipt_answer(
    starknet_node: StarknetNode,
) -> None:
    starknet_node.script(TX, received(), pre_confirmed(), accepted_on_l2())
    client = client_of(starknet_node)

    before = await client.get_transaction_status(TX)
    with pytest.raises(ClientError):
        await client.get_transaction_receipt(TX)
    after_missing = await client.get_transaction_status(TX)
    await client.get_transaction_receipt(TX)
    after_pre_confirmed = await client.get_transaction_status(TX)

    assert before.finality_status is TransactionStatus.RECEIVED
    assert after_missing.finality_status is TransactionStatus.RECEIVED
    assert after_pre_confirmed.finality_status is TransactionStatus.PRE_CONFIRMED
    assert after_pre_confirmed.execution_status is TransactionExecutionStatus.SUCCEEDED


async def test_node_reports_reverted_receipt_with_reason(
    starknet_node: StarknetNode,
) -> None:
    starknet_node.script(TX, reverted())
    client = client_of(starknet_node)

    receipt = await client.get_transaction_receipt(TX)
    status = await client.get_transaction_status(TX)

    assert receipt.execution_status is TransactionExecutionStatus.REVERTED
    assert receipt.revert_reason == REVERT_REASON
    assert status.failure_reason == REVERT_REASON
    [fee] = receipt.events
    assert fee.keys == [int(TRANSFER_SELECTOR, 16)]
    assert fee.data == [
        int(PAYER, 16),
        int(SEQUENCER, 16),
        receipt.actual_fee.amount,
        0,
    ]


async def test_node_emits_unkeyed_transfer_then_executed_then_fee(
    starknet_node: StarknetNode,
) -> None:
    amount = 2**128 + 25 * 10**18
    starknet_node.script(TX, accepted_on_l2(Transfer(amount=amount)))

    receipt = await client_of(starknet_node).get_transaction_receipt(TX)

    payment, executed, fee = receipt.events
    assert payment.from_address == int(STRK, 16)
    assert payment.keys == [int(TRANSFER_SELECTOR, 16)]
    assert payment.data == [int(PAYER, 16), int(RECIPIENT, 16), 25 * 10**18, 1]
    assert executed.from_address == int(PAYER, 16)
    assert executed.keys[1] == int(TX, 16)
    assert fee.data[1] == int(SEQUENCER, 16)


async def test_node_emits_keyed_usdc_transfer(starknet_node: StarknetNode) -> None:
    transfer = Transfer(token=USDC, amount=12_500_000, keyed=True)
    starknet_node.script(TX, accepted_on_l2(transfer))

    receipt = await client_of(starknet_node).get_transaction_receipt(TX)

    payment = receipt.events[0]
    assert payment.from_address == int(USDC, 16)
    assert payment.keys == [
        int(TRANSFER_SELECTOR, 16),
        int(PAYER, 16),
        int(RECIPIENT, 16),
    ]
    assert payment.data == [12_500_000, 0]


async def test_node_emits_approval_instead_of_transfer(
    starknet_node: StarknetNode,
) -> None:
    starknet_node.script(TX, accepted_on_l2(Approval()))

    receipt = await client_of(starknet_node).get_transaction_receipt(TX)

    assert receipt.execution_status is TransactionExecutionStatus.SUCCEEDED
    assert receipt.events[0].keys == [int(APPROVAL_SELECTOR, 16)]
    transfers = [e for e in receipt.events if e.keys[0] == int(TRANSFER_SELECTOR, 16)]
    assert [transfer.data[1] for transfer in transfers] == [int(SEQUENCER, 16)]


async def test_node_surfaces_json_rpc_error_as_client_error(
    starknet_node: StarknetNode,
) -> None:
    starknet_node.script(TX, rpc_error(-32603, "Internal error", data="db down"))

    with pytest.raises(ClientError) as error:
        await client_of(starknet_node).get_transaction_receipt(TX)

    assert error.value.code == -32603
    assert error.value.data == "db down"


async def test_node_surfaces_http_500_as_client_error(
    starknet_node: StarknetNode,
) -> None:
    starknet_node.script(TX, http_error(500), accepted_on_l2())
    client = client_of(starknet_node)

    with pytest.raises(ClientError) as error:
        await client.get_transaction_receipt(TX)
    recovered = await client.get_transaction_receipt(TX)

    # starknet-py reports an HTTP failure with the status as a string code.
    assert error.value.code == "500"
    assert recovered.finality_status is TransactionFinalityStatus.ACCEPTED_ON_L2


async def test_node_waits_the_scripted_latency(starknet_node: StarknetNode) -> None:
    starknet_node.script(TX, accepted_on_l2(latency=0.3))
    client = client_of(starknet_node)
    await client.get_chain_id()

    started = time.monotonic()
    await client.get_transaction_receipt(TX)

    assert time.monotonic() - started >= 0.3


async def test_node_answers_configured_chain_id(
    starknet_node: StarknetNode, starknet_node_factory: Callable[..., StarknetNode]
) -> None:
    mainnet = starknet_node_factory(chain_id=SN_MAIN)

    sepolia_id = await client_of(starknet_node).get_chain_id()
    mainnet_id = await client_of(mainnet).get_chain_id()

    assert bytes.fromhex(sepolia_id[2:]) == b"SN_SEPOLIA"
    assert bytes.fromhex(mainnet_id[2:]) == b"SN_MAIN"
    assert mainnet.url != starknet_node.url


async def test_client_checks_spec_version_once_without_warning(
    starknet_node: StarknetNode,
) -> None:
    client = client_of(starknet_node)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        version = await client.spec_version()
        await client.get_chain_id()

    assert version == "0.10.2"
    assert [method for method, _ in starknet_node.calls] == [
        "starknet_specVersion",
        "starknet_specVersion",
        "starknet_chainId",
    ]


async def test_client_warns_when_node_speaks_another_spec(
    starknet_node_factory: Callable[..., StarknetNode],
) -> None:
    node = starknet_node_factory(spec_version="0.9.0")

    with pytest.warns(IncompatibleRPCVersionWarning):
        await client_of(node).get_chain_id()


def test_node_answers_sync_callers_and_copies_the_request_id(
    starknet_node: StarknetNode,
) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 7, "method": "starknet_chainId", "params": []},
        {"jsonrpc": "2.0", "id": "x", "method": "starknet_call", "params": []},
    ]

    answers = httpx.post(starknet_node.url, json=batch).json()

    assert answers[0] == {"jsonrpc": "2.0", "id": 7, "result": "0x534e5f5345504f4c4941"}
    assert answers[1]["id"] == "x"
    assert answers[1]["error"]["code"] == -32601


def test_node_stop_releases_its_port_and_thread() -> None:
    node = StarknetNode().start()
    port = int(node.url.split(":")[2].split("/")[0])

    node.stop()

    assert not [t for t in threading.enumerate() if t.name == "starknet-node"]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


FIXTURE_STEPS = {
    "receipt_accepted_on_l2_transfer.json": accepted_on_l2(),
    "receipt_accepted_on_l1_transfer.json": accepted_on_l1(),
    "receipt_pre_confirmed.json": pre_confirmed(),
    "receipt_accepted_on_l2_no_block_hash.json": accepted_on_l2(block_hash=None),
    "receipt_reverted.json": reverted(),
    "receipt_no_transfer.json": accepted_on_l2(Approval()),
    "receipt_accepted_on_l2_usdc_keyed_transfer.json": accepted_on_l2(
        Transfer(token=USDC, keyed=True)
    ),
    "receipt_accepted_on_l2_sepolia_strk_keyed_transfer.json": accepted_on_l2(
        Transfer(keyed=True)
    ),
}


@pytest.mark.skipif(
    not STARKNET_FIXTURES.is_dir(),
    reason=f"shared Starknet fixtures not found at {STARKNET_FIXTURES}",
)
@pytest.mark.parametrize("name", sorted(FIXTURE_STEPS))
def test_built_receipt_has_the_shape_of_the_shared_fixture(name: str) -> None:
    fixture = json.loads((STARKNET_FIXTURES / name).read_text())["result"]
    step = FIXTURE_STEPS[name]
    assert step.receipt is not None

    built = build_receipt(fixture["transaction_hash"], step.receipt)

    assert shape_of(built) == shape_of(fixture)


@pytest.mark.skipif(
    not STARKNET_FIXTURES.is_dir(),
    reason=f"shared Starknet fixtures not found at {STARKNET_FIXTURES}",
)
def test_default_receipt_equals_the_shared_transfer_fixture() -> None:
    path = STARKNET_FIXTURES / "receipt_accepted_on_l2_transfer.json"
    fixture = json.loads(path.read_text())["result"]
    step = accepted_on_l2()
    assert step.receipt is not None

    built = build_receipt(TX, step.receipt)

    assert built == fixture


def shape_of(value: Any) -> Any:
    """Keys of every object and the types of leaves, recursively."""
    if isinstance(value, dict):
        return {key: shape_of(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape_of(item) for item in value]
    return type(value).__name__
