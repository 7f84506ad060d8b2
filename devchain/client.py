"""Paying through the local chain simulator: submit a made-up ERC-20 transfer."""

from typing import Any

import aiohttp

SUBMIT_METHOD = "devchain_submitTransfer"
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=10)


class DevChainError(Exception):
    """The simulator refused the transfer (``code`` set) or could not be reached."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


async def submit_transfer(
    rpc_url: str, *, token: str, sender: str, recipient: str, amount: int | str
) -> str:
    """Submit a transfer of ``amount`` base units of ``token``; returns its tx hash.

    Raises:
        DevChainError: the simulator answered an error or did not answer.
    """
    params = {
        "token": token,
        "sender": sender,
        "recipient": recipient,
        "amount": str(amount),
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": SUBMIT_METHOD, "params": params}
    reply = await _post(rpc_url, body)

    if "error" in reply:
        error = reply["error"]
        raise DevChainError(str(error.get("message")), code=error.get("code"))
    try:
        return str(reply["result"]["transaction_hash"])
    except (KeyError, TypeError) as error:
        raise DevChainError(f"unexpected answer from {rpc_url}: {reply!r}") from error


async def _post(rpc_url: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session:
            async with session.post(rpc_url, json=body) as response:
                response.raise_for_status()
                reply = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        raise DevChainError(f"chain simulator at {rpc_url} failed: {error}") from error
    if not isinstance(reply, dict):
        raise DevChainError(f"unexpected answer from {rpc_url}: {reply!r}")
    return reply
