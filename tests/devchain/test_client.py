"""submit_transfer pays through the simulator and converts its refusals."""

import socket

import pytest

from devchain.client import DevChainError, submit_transfer
from devchain.server import DevChain
from tests.devchain.helpers import PAYER, RECIPIENT, STRK


async def test_each_transfer_gets_a_fresh_unpadded_hash(dev_chain: DevChain) -> None:
    hashes = [
        await submit_transfer(
            dev_chain.url, token=STRK, sender=PAYER, recipient=RECIPIENT, amount=amount
        )
        for amount in (1, "1", 10**18)
    ]

    assert len(set(hashes)) == 3
    assert all(tx_hash == hex(int(tx_hash, 16)) for tx_hash in hashes)


@pytest.mark.parametrize("amount", ["-1", "1.5", "0x10", str(2**256)])
async def test_bad_amount_is_refused_as_invalid_params(
    dev_chain: DevChain, amount: str
) -> None:
    with pytest.raises(DevChainError) as error:
        await submit_transfer(
            dev_chain.url, token=STRK, sender=PAYER, recipient=RECIPIENT, amount=amount
        )

    assert error.value.code == -32602


async def test_unreachable_simulator_raises_devchain_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(DevChainError) as error:
        await submit_transfer(
            f"http://127.0.0.1:{port}/rpc",
            token=STRK,
            sender=PAYER,
            recipient=RECIPIENT,
            amount=1,
        )

    assert error.value.code is None
