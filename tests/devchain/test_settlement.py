"""The project's own settlement check settles a simulated payment once final."""

import pytest
from temporalio.testing import ActivityEnvironment

from activities.settlement import SettlementActivities
from devchain.server import DevChain
from tests.devchain.helpers import (
    AMOUNT,
    FINALITY_SECONDS,
    PRE_CONFIRM_SECONDS,
    RECIPIENT,
    pay,
)
from workflows.models import ReceiptCheck, ReceiptCheckInput, ReceiptOutcome


async def _check(url: str, tx_hash: str, min_amount: int = AMOUNT) -> ReceiptCheck:
    check = ReceiptCheckInput(
        payment_ref="pay_devchain",
        settlement_tx_hash=tx_hash,
        network="sepolia",
        token="STRK",
        recipient=RECIPIENT,
        min_amount=str(min_amount),
        required_finality="ACCEPTED_ON_L2",
    )
    activities = SettlementActivities([url])
    return await ActivityEnvironment().run(activities.check_receipt, check)


async def test_payment_is_pending_until_finality_then_settled(
    dev_chain: DevChain,
) -> None:
    submitted = await pay(dev_chain.url)

    received = await _check(dev_chain.url, submitted.tx_hash)
    await submitted.wait_past(PRE_CONFIRM_SECONDS)
    pre_confirmed = await _check(dev_chain.url, submitted.tx_hash)
    await submitted.wait_past(FINALITY_SECONDS)
    settled = await _check(dev_chain.url, submitted.tx_hash)

    assert received.outcome is ReceiptOutcome.PENDING
    assert pre_confirmed.outcome is ReceiptOutcome.PENDING
    assert pre_confirmed.finality == "PRE_CONFIRMED"
    assert settled.outcome is ReceiptOutcome.SETTLED
    assert settled.transfer_check == "verified"
    assert settled.transferred == str(AMOUNT)
    assert settled.finality == "ACCEPTED_ON_L2"


@pytest.mark.parametrize("paid", [AMOUNT - 1, 0])
async def test_payment_below_min_amount_fails(dev_chain: DevChain, paid: int) -> None:
    submitted = await pay(dev_chain.url, amount=paid)

    await submitted.wait_past(FINALITY_SECONDS)
    result = await _check(dev_chain.url, submitted.tx_hash)

    assert result.outcome is ReceiptOutcome.FAILED
    assert result.transfer_check == "missing"
    assert result.transferred == str(paid)
