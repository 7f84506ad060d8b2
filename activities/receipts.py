"""Reading a Starknet transaction receipt as a settlement decision (pure)."""

from starknet_py.hash.selector import get_selector_from_name
from starknet_py.net.client_models import (
    Event,
    TransactionExecutionStatus,
    TransactionReceipt,
)

from workflows.models import ReceiptCheck, ReceiptCheckInput, ReceiptOutcome

TRANSFER_SELECTOR = get_selector_from_name("Transfer")
FINALITY_ORDER = ("PRE_CONFIRMED", "ACCEPTED_ON_L2", "ACCEPTED_ON_L1")
_U128 = 2**128


def interpret_receipt(
    receipt: TransactionReceipt, check: ReceiptCheckInput, token_address: str | None
) -> ReceiptCheck:
    """Settled, pending or failed, with the evidence; never settles a revert."""
    finality = receipt.finality_status.value
    execution = receipt.execution_status.value
    if receipt.execution_status is TransactionExecutionStatus.REVERTED:
        return ReceiptCheck(
            outcome=ReceiptOutcome.FAILED,
            finality=finality,
            execution_status=execution,
            detail=f"transaction reverted: {receipt.revert_reason or 'no reason'}",
        )
    if not reaches(finality, check.required_finality):
        return ReceiptCheck(
            outcome=ReceiptOutcome.PENDING,
            finality=finality,
            execution_status=execution,
            detail=f"{finality}, waiting for {check.required_finality}",
        )
    return _check_transfer(receipt, check, token_address)


def reaches(finality: str, required: str) -> bool:
    """Whether ``finality`` is at or beyond ``required``."""
    return FINALITY_ORDER.index(finality) >= FINALITY_ORDER.index(required)


def transferred_to(events: list[Event], token: int, recipient: int) -> int:
    """Sum of ERC-20 Transfer amounts of ``token`` to ``recipient`` in ``events``."""
    total = 0
    for event in events:
        if event.from_address != token or not event.keys:
            continue
        if event.keys[0] != TRANSFER_SELECTOR:
            continue
        # Keyed layout (OpenZeppelin, native USDC, STRK on Sepolia) puts from/to
        # in the keys; the StarkGate layout puts them first in the data.
        if len(event.keys) == 3 and len(event.data) == 2:
            to, low, high = event.keys[2], event.data[0], event.data[1]
        elif len(event.keys) == 1 and len(event.data) == 4:
            to, low, high = event.data[1], event.data[2], event.data[3]
        else:
            continue
        if to == recipient:
            total += low + high * _U128
    return total


def _check_transfer(
    receipt: TransactionReceipt, check: ReceiptCheckInput, token_address: str | None
) -> ReceiptCheck:
    finality = receipt.finality_status.value
    execution = receipt.execution_status.value
    if token_address is None:
        # Known limitation: a token without a known contract (a shielded Tongo
        # payment, or a symbol not configured) cannot be matched to a Transfer;
        # it settles on finality alone and the evidence says "unchecked".
        return ReceiptCheck(
            outcome=ReceiptOutcome.SETTLED,
            finality=finality,
            execution_status=execution,
            detail=f"no contract address known for {check.token}; transfer unchecked",
            transfer_check="unchecked",
        )

    try:
        recipient = int(check.recipient, 16)
    except ValueError:
        return ReceiptCheck(
            outcome=ReceiptOutcome.FAILED,
            finality=finality,
            execution_status=execution,
            detail=f"challenge recipient {check.recipient!r} is not a Starknet address",
            transfer_check="missing",
        )
    paid = transferred_to(receipt.events, int(token_address, 16), recipient)
    if paid < int(check.min_amount):
        return ReceiptCheck(
            outcome=ReceiptOutcome.FAILED,
            finality=finality,
            execution_status=execution,
            detail=(
                f"no Transfer of at least {check.min_amount} {check.token} to "
                f"{check.recipient} (found {paid})"
            ),
            transfer_check="missing",
            transferred=str(paid),
        )
    return ReceiptCheck(
        outcome=ReceiptOutcome.SETTLED,
        finality=finality,
        execution_status=execution,
        detail=f"{finality}, {paid} {check.token} to the recipient",
        transfer_check="verified",
        transferred=str(paid),
    )
