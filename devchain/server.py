"""The local chain simulator: a Starknet JSON-RPC server for made-up transfers."""

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Callable
from typing import Any, Literal

from aiohttp import web

from devchain.transfers import (
    RECEIVED,
    SimulatedTransfer,
    Timeline,
    build_receipt,
    build_status,
)
from protocol.tokens import DEFAULT_TOKEN_ADDRESSES

logger = logging.getLogger(__name__)

# starknet-py 0.30 expects this version and warns on any other.
SPEC_VERSION = "0.10.2"
CHAIN_IDS = {"sepolia": "0x534e5f5345504f4c4941", "mainnet": "0x534e5f4d41494e"}

# Block numbers start low so nobody mistakes them for a real chain's.
FIRST_BLOCK_NUMBER = 1
FIELD_PRIME = 2**251 + 17 * 2**192 + 1
U256_LIMIT = 2**256
STOP_GRACE_SECONDS = 0.25

SUBMIT_METHOD = "devchain_submitTransfer"
RECEIPT_METHOD = "starknet_getTransactionReceipt"
STATUS_METHOD = "starknet_getTransactionStatus"

Network = Literal["sepolia", "mainnet"]


# Starknet JSON-RPC error TXN_HASH_NOT_FOUND, also the answer before a receipt.
TX_HASH_NOT_FOUND = (29, "Transaction hash not found")


class RpcError(Exception):
    """A JSON-RPC error object to send back instead of a result."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DevChain:
    """A simulated Starknet node in the caller's event loop; not a real chain.

    Transfers submitted with ``devchain_submitTransfer`` are RECEIVED at once,
    PRE_CONFIRMED after ``pre_confirm_seconds`` and ACCEPTED_ON_L2 after
    ``finality_seconds``. Their state is worked out from the loop clock on each
    request, so nothing runs in the background per transaction.
    """

    # Known limitation: the simulator keeps no balances and executes nothing, so
    # every transfer succeeds (no reverts) and none reaches ACCEPTED_ON_L1; its
    # transactions live in memory and vanish on stop. That is enough for a local
    # paid run; failure paths are covered by the test node in tests/harness.

    def __init__(
        self,
        *,
        network: Network = "sepolia",
        finality_seconds: float = 3.0,
        pre_confirm_seconds: float = 1.0,
    ) -> None:
        if network not in CHAIN_IDS:
            raise ValueError(f"unknown network {network!r}; use sepolia or mainnet")
        self.network = network
        self.chain_id = CHAIN_IDS[network]
        self.timeline = Timeline(pre_confirm_seconds, finality_seconds)

        # Must match: protocol/tokens.py, which the settlement check reads. STRK
        # and ETH emit the StarkGate (unkeyed) layout; any other token contract
        # gets the OpenZeppelin (keyed) one.
        tokens = DEFAULT_TOKEN_ADDRESSES[network]
        self.strk_address = tokens["STRK"]
        self.eth_address = tokens["ETH"]
        self._unkeyed_tokens = {int(tokens["STRK"], 16), int(tokens["ETH"], 16)}

        self._transfers: dict[int, SimulatedTransfer] = {}
        self._next_block_number = FIRST_BLOCK_NUMBER
        self._salt = secrets.token_bytes(16)
        self._methods: dict[str, Callable[[Any], Any]] = {
            "starknet_specVersion": lambda params: SPEC_VERSION,
            "starknet_chainId": lambda params: self.chain_id,
            RECEIPT_METHOD: self._get_receipt,
            STATUS_METHOD: self._get_status,
            SUBMIT_METHOD: self._submit_transfer,
        }
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The JSON-RPC URL, e.g. ``http://127.0.0.1:5050/rpc``."""
        if self._url is None:
            raise RuntimeError("the chain simulator is not started")
        return self._url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve JSON-RPC on ``host:port`` (0 picks a free port); returns the URL."""
        if self._runner is not None:
            raise RuntimeError("the chain simulator is already started")
        app = web.Application()
        app.router.add_post("/rpc", self._handle)
        runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=STOP_GRACE_SECONDS
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise

        self._runner = runner
        bound_port = runner.addresses[0][1]
        self._url = f"http://{_url_host(host)}:{bound_port}/rpc"
        logger.warning(
            "chain simulator started, not a real starknet chain: receipts, blocks "
            "and fees are made up url=%s network=%s chain_id=%s",
            self._url,
            self.network,
            self.chain_id,
        )
        return self._url

    async def stop(self) -> None:
        """Stop serving; a second call does nothing."""
        if self._runner is None:
            return
        runner, self._runner, self._url = self._runner, None, None
        await runner.cleanup()
        logger.info("chain simulator stopped network=%s", self.network)

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json()
        except ValueError:
            return web.json_response(_error(None, -32700, "Parse error"))

        if isinstance(payload, list):
            if not payload:
                return web.json_response(_error(None, -32600, "Invalid Request"))
            answers = [self._answer(message) for message in payload]
            replies = [answer for answer in answers if answer is not None]
            return _json_or_empty(replies or None)
        return _json_or_empty(self._answer(payload))

    def _answer(self, message: Any) -> dict[str, Any] | None:
        """The response to one request, or None for a notification (no ``id``)."""
        if not isinstance(message, dict) or not isinstance(message.get("method"), str):
            request_id = message.get("id") if isinstance(message, dict) else None
            return _error(request_id, -32600, "Invalid Request")
        request_id, method = message.get("id"), message["method"]
        logger.debug("rpc call method=%s", method)

        handler = self._methods.get(method)
        try:
            if handler is None:
                raise RpcError(-32601, "Method not found")
            result = handler(message.get("params", []))
        except RpcError as error:
            reply = _error(request_id, error.code, error.message)
        else:
            reply = {"jsonrpc": "2.0", "id": request_id, "result": result}
        return reply if "id" in message else None

    def _get_receipt(self, params: Any) -> dict[str, Any]:
        transfer, finality = self._lookup(params)
        # Until pre-confirmation a node knows only the status, not a receipt.
        if finality == RECEIVED:
            raise RpcError(*TX_HASH_NOT_FOUND)
        return build_receipt(transfer, finality)

    def _get_status(self, params: Any) -> dict[str, str]:
        transfer, finality = self._lookup(params)
        return build_status(transfer, finality)

    def _lookup(self, params: Any) -> tuple[SimulatedTransfer, str]:
        # starknet-py names its params; other clients may send them by position.
        value = params.get("transaction_hash") if isinstance(params, dict) else None
        if isinstance(params, list) and len(params) == 1:
            value = params[0]
        transfer = self._transfers.get(_felt(value, "transaction_hash"))
        if transfer is None:
            raise RpcError(*TX_HASH_NOT_FOUND)
        elapsed = asyncio.get_running_loop().time() - transfer.submitted_at
        return transfer, self.timeline.finality_after(elapsed)

    def _submit_transfer(self, params: Any) -> dict[str, str]:
        if not isinstance(params, dict):
            raise RpcError(-32602, "Invalid params: expected named params")
        token = _felt(params.get("token"), "token")
        sender = _felt(params.get("sender"), "sender")
        recipient = _felt(params.get("recipient"), "recipient")
        amount = _amount(params.get("amount"))

        block_number = self._next_block_number
        self._next_block_number += 1
        transfer = SimulatedTransfer(
            tx_hash=self._fresh_tx_hash(),
            token=token,
            sender=sender,
            recipient=recipient,
            amount=amount,
            fee_token=int(self.strk_address, 16),
            keyed=token not in self._unkeyed_tokens,
            block_number=block_number,
            block_hash=self._made_up_felt(f"block:{block_number}"),
            submitted_at=asyncio.get_running_loop().time(),
        )
        self._transfers[transfer.tx_hash] = transfer
        logger.info(
            "transfer simulated tx_hash=%s token=%s recipient=%s amount=%s "
            "block_number=%s",
            hex(transfer.tx_hash),
            hex(token),
            hex(recipient),
            amount,
            block_number,
        )
        return {"transaction_hash": hex(transfer.tx_hash)}

    def _fresh_tx_hash(self) -> int:
        while True:
            tx_hash = self._made_up_felt(f"tx:{secrets.token_hex(16)}")
            if tx_hash and tx_hash not in self._transfers:
                return tx_hash

    def _made_up_felt(self, label: str) -> int:
        # 250 bits, like sn_keccak, so every value is a valid felt.
        digest = hashlib.sha256(self._salt + label.encode()).digest()
        return int.from_bytes(digest, "big") >> 6


def _felt(value: Any, name: str) -> int:
    if not isinstance(value, str) or not value.lower().startswith("0x"):
        raise RpcError(-32602, f"Invalid params: {name} must be a 0x hex felt")
    try:
        number = int(value, 16)
    except ValueError:
        raise RpcError(-32602, f"Invalid params: {name} is not hex") from None
    if not 0 <= number < FIELD_PRIME:
        raise RpcError(-32602, f"Invalid params: {name} is not a felt")
    return number


def _amount(value: Any) -> int:
    # A decimal string, as token amounts travel in the payment protocol.
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise RpcError(-32602, "Invalid params: amount must be a decimal string")
    amount = int(value)
    if amount >= U256_LIMIT:
        raise RpcError(-32602, "Invalid params: amount does not fit a u256")
    return amount


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "error": {"code": code, "message": message},
    }


def _json_or_empty(body: Any) -> web.Response:
    # JSON-RPC sends nothing back for notifications alone.
    if body is None:
        return web.Response(status=204)
    return web.json_response(body)


def _url_host(host: str) -> str:
    # A wildcard bind is reached through loopback; IPv6 needs brackets in a URL.
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
