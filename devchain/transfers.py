"""Simulated ERC-20 transfers and the receipts and statuses a node reports for them."""

from dataclasses import dataclass
from typing import Any

from starknet_py.hash.selector import get_selector_from_name

# Must match: the Starknet JSON-RPC spec 0.10.2 shapes in
# ../shared/fixtures/starknet/README.md (unpadded felts, no extra fields).
TRANSFER_SELECTOR = get_selector_from_name("Transfer")
EXECUTED_SELECTOR = get_selector_from_name("TransactionExecuted")

# The real mainnet and Sepolia sequencer, so fee transfers look as they do on chain.
SEQUENCER = 0x1176A1BD84444C89232EC27754698E5D2E7E1A7F1539F12027F28B23EC9F3D8

# A made-up fee in FRI and the resources of a typical account transfer.
FEE_FRI = 0xB0C04EAE32B00
EXECUTION_RESOURCES = {"l1_gas": 0, "l1_data_gas": 128, "l2_gas": 1036480}

RECEIVED = "RECEIVED"
PRE_CONFIRMED = "PRE_CONFIRMED"
ACCEPTED_ON_L2 = "ACCEPTED_ON_L2"

_U128 = 2**128


@dataclass(frozen=True)
class Timeline:
    """When a simulated transaction reaches each finality, in seconds after submit."""

    pre_confirm_seconds: float
    finality_seconds: float

    def __post_init__(self) -> None:
        if not 0 <= self.pre_confirm_seconds <= self.finality_seconds:
            raise ValueError(
                "need 0 <= pre_confirm_seconds <= finality_seconds, got "
                f"{self.pre_confirm_seconds} and {self.finality_seconds}"
            )

    def finality_after(self, elapsed: float) -> str:
        """The finality status of a transaction submitted ``elapsed`` seconds ago."""
        if elapsed >= self.finality_seconds:
            return ACCEPTED_ON_L2
        if elapsed >= self.pre_confirm_seconds:
            return PRE_CONFIRMED
        return RECEIVED


@dataclass(frozen=True)
class SimulatedTransfer:
    """One ``transfer`` call the simulator accepted; every field is made up locally.

    ``keyed`` picks the OpenZeppelin event layout (from/to in the keys) over the
    StarkGate one (from/to first in the data).
    """

    tx_hash: int
    token: int
    sender: int
    recipient: int
    amount: int
    fee_token: int
    keyed: bool
    block_number: int
    block_hash: int
    submitted_at: float


def build_status(transfer: SimulatedTransfer, finality: str) -> dict[str, str]:
    """A ``starknet_getTransactionStatus`` result; RECEIVED has no execution yet."""
    if finality == RECEIVED:
        return {"finality_status": RECEIVED}
    return {"finality_status": finality, "execution_status": "SUCCEEDED"}


def build_receipt(transfer: SimulatedTransfer, finality: str) -> dict[str, Any]:
    """A ``starknet_getTransactionReceipt`` result for a pre-confirmed or later tx."""
    if finality == RECEIVED:
        raise ValueError("a received transaction has no receipt yet")

    receipt: dict[str, Any] = {
        "type": "INVOKE",
        "transaction_hash": hex(transfer.tx_hash),
        "actual_fee": {"amount": hex(FEE_FRI), "unit": "FRI"},
        "execution_status": "SUCCEEDED",
        "finality_status": finality,
        "block_number": transfer.block_number,
        "messages_sent": [],
        "events": _events(transfer),
        "execution_resources": dict(EXECUTION_RESOURCES),
    }
    # A pre-confirmed block is still being built, so it has a number but no hash.
    if finality != PRE_CONFIRMED:
        receipt["block_hash"] = hex(transfer.block_hash)
    return receipt


def _events(transfer: SimulatedTransfer) -> list[dict[str, Any]]:
    # A node emits the token event, then the account's TransactionExecuted, then
    # the STRK fee transfer to the sequencer last.
    payment = _transfer_event(
        transfer.token,
        transfer.sender,
        transfer.recipient,
        transfer.amount,
        keyed=transfer.keyed,
    )
    executed = _event(
        transfer.sender, [EXECUTED_SELECTOR, transfer.tx_hash], [0x1, 0x1, 0x1]
    )
    # The fee token is STRK, whose layout is the payment's when both are STRK.
    fee_keyed = transfer.keyed and transfer.token == transfer.fee_token
    fee = _transfer_event(
        transfer.fee_token, transfer.sender, SEQUENCER, FEE_FRI, keyed=fee_keyed
    )
    return [payment, executed, fee]


def _transfer_event(
    token: int, sender: int, recipient: int, amount: int, *, keyed: bool
) -> dict[str, Any]:
    # A u256 travels as two felts, the low 128 bits first.
    low, high = amount % _U128, amount // _U128
    if keyed:
        return _event(token, [TRANSFER_SELECTOR, sender, recipient], [low, high])
    return _event(token, [TRANSFER_SELECTOR], [sender, recipient, low, high])


def _event(source: int, keys: list[int], data: list[int]) -> dict[str, Any]:
    return {
        "from_address": hex(source),
        "keys": [hex(key) for key in keys],
        "data": [hex(value) for value in data],
    }
