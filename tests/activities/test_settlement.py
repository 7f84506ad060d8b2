"""check_receipt reads receipts through starknet-py from the local node."""

from collections.abc import Callable

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.settlement import SettlementActivities
from tests.harness import starknet_node as chain
from tests.harness.starknet_node import StarknetNode
from workflows.models import ReceiptCheck, ReceiptCheckInput, ReceiptOutcome

TX = "0x3de677cc353d4b8738d248d094541bb1c13f395f0d743748c2bb7bb135e003c"
AMOUNT = 25 * 10**18


def _check(**overrides: str) -> ReceiptCheckInput:
    fields = {
        "payment_ref": "pay_rk_settle",
        "settlement_tx_hash": TX,
        "network": "sepolia",
        "token": "STRK",
        "recipient": chain.RECIPIENT,
        "min_amount": str(AMOUNT),
        "required_finality": "ACCEPTED_ON_L2",
    }
    return ReceiptCheckInput(**(fields | overrides))


async def _run(node_urls: list[str], check: ReceiptCheckInput) -> ReceiptCheck:
    activities = SettlementActivities(node_urls)
    return await ActivityEnvironment().run(activities.check_receipt, check)


async def test_accepted_transfer_to_recipient_settles(
    starknet_node: StarknetNode,
) -> None:
    starknet_node.script(TX, chain.accepted_on_l2())

    result = await _run([starknet_node.url], _check())

    assert result.outcome is ReceiptOutcome.SETTLED
    assert result.transfer_check == "verified"
    assert result.transferred == str(AMOUNT)
    assert result.finality == "ACCEPTED_ON_L2"


async def test_keyed_transfer_layout_also_settles(starknet_node: StarknetNode) -> None:
    starknet_node.script(TX, chain.accepted_on_l2(chain.Transfer(keyed=True)))

    result = await _run([starknet_node.url], _check())

    assert result.outcome is ReceiptOutcome.SETTLED


@pytest.mark.parametrize(
    "step", [chain.not_found(), chain.received(), chain.pre_confirmed()]
)
async def test_unfinal_transaction_is_pending(
    starknet_node: StarknetNode, step: chain.Step
) -> None:
    starknet_node.script(TX, step)

    result = await _run([starknet_node.url], _check())

    assert result.outcome is ReceiptOutcome.PENDING


async def test_l1_finality_required_keeps_l2_pending(
    starknet_node: StarknetNode,
) -> None:
    starknet_node.script(TX, chain.accepted_on_l2(), chain.accepted_on_l1())

    first = await _run([starknet_node.url], _check(required_finality="ACCEPTED_ON_L1"))
    second = await _run([starknet_node.url], _check(required_finality="ACCEPTED_ON_L1"))

    assert first.outcome is ReceiptOutcome.PENDING
    assert second.outcome is ReceiptOutcome.SETTLED


async def test_reverted_transaction_fails_with_its_reason(
    starknet_node: StarknetNode,
) -> None:
    starknet_node.script(TX, chain.reverted())

    result = await _run([starknet_node.url], _check())

    assert result.outcome is ReceiptOutcome.FAILED
    assert "u256_sub Overflow" in result.detail


@pytest.mark.parametrize(
    "transfer",
    [
        chain.Approval(),
        chain.Transfer(to=chain.SEQUENCER),
        chain.Transfer(amount=AMOUNT - 1),
        chain.Transfer(token=chain.USDC),
    ],
    ids=["approval-only", "other-recipient", "too-little", "other-token"],
)
async def test_receipt_without_enough_transfer_to_recipient_fails(
    starknet_node: StarknetNode, transfer: chain.TokenEvent
) -> None:
    starknet_node.script(TX, chain.accepted_on_l2(transfer))

    result = await _run([starknet_node.url], _check())

    assert result.outcome is ReceiptOutcome.FAILED
    assert result.transfer_check == "missing"
    assert "no Transfer of at least" in result.detail


async def test_token_without_known_contract_settles_unchecked(
    starknet_node: StarknetNode,
) -> None:
    starknet_node.script(TX, chain.accepted_on_l2(chain.Transfer(token=chain.USDC)))

    result = await _run([starknet_node.url], _check(token="USDC"))

    assert result.outcome is ReceiptOutcome.SETTLED
    assert result.transfer_check == "unchecked"


async def test_primary_down_falls_back_to_next_endpoint(
    starknet_node_factory: Callable[..., StarknetNode],
) -> None:
    primary, fallback = starknet_node_factory(), starknet_node_factory()
    primary.script(TX, chain.http_error(503))
    fallback.script(TX, chain.accepted_on_l2())

    result = await _run([primary.url, fallback.url], _check())

    assert result.outcome is ReceiptOutcome.SETTLED
    assert result.rpc_url == fallback.url.removesuffix("/rpc")
    assert primary.count("getTransactionReceipt", TX) == 1


async def test_every_endpoint_failing_raises_retryable_rpc_failure(
    starknet_node_factory: Callable[..., StarknetNode],
) -> None:
    primary, fallback = starknet_node_factory(), starknet_node_factory()
    primary.script(TX, chain.rpc_error(-32603, "Internal error"))
    fallback.script(TX, chain.http_error(502))

    with pytest.raises(ApplicationError) as raised:
        await _run([primary.url, fallback.url], _check())

    assert raised.value.type == "RPC_FAILURE"
    assert not raised.value.non_retryable
