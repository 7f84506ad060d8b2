"""Parties of a simulated payment, and submitting one on the loop clock."""

import asyncio
from dataclasses import dataclass

from devchain.client import submit_transfer
from protocol.tokens import token_address

PRE_CONFIRM_SECONDS = 0.2
FINALITY_SECONDS = 0.6

PAYER = "0x2356d7b69f1cc074545649e54f83e77fcbc31a1c3244590b47f7cea131bd2cc"
RECIPIENT = "0x1425b174d1be627a1216f1871db61a89a4f58fe9f667cad778160699b3fdb22"
SEQUENCER = "0x1176a1bd84444c89232ec27754698e5d2e7e1a7f1539f12027f28b23ec9f3d8"
STRK = token_address("sepolia", "STRK") or ""
AMOUNT = 25 * 10**18


@dataclass(frozen=True)
class Submitted:
    """A transfer's hash and the loop time its submission had finished by."""

    tx_hash: str
    submitted_by: float

    async def wait_past(self, seconds: float) -> None:
        """Sleep until surely more than ``seconds`` passed since the submission."""
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, self.submitted_by + seconds + 0.02 - loop.time()))


async def pay(url: str, amount: int = AMOUNT, token: str = STRK) -> Submitted:
    """Submit a transfer of ``amount`` from the payer to the recipient."""
    tx_hash = await submit_transfer(
        url, token=token, sender=PAYER, recipient=RECIPIENT, amount=amount
    )
    return Submitted(tx_hash, asyncio.get_running_loop().time())
