"""A local Starknet JSON-RPC node whose transactions follow per-hash scripts."""

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, Self

import pytest
from aiohttp import web
from starknet_py.hash.selector import get_selector_from_name

from tests.harness.http_server import LocalServer

SPEC_VERSION = "0.10.2"
SN_SEPOLIA = "0x534e5f5345504f4c4941"
SN_MAIN = "0x534e5f4d41494e"
RECEIPT_METHOD = "starknet_getTransactionReceipt"
STATUS_METHOD = "starknet_getTransactionStatus"

# The parties of ../shared/fixtures/starknet/README.md.
PAYER = "0x2356d7b69f1cc074545649e54f83e77fcbc31a1c3244590b47f7cea131bd2cc"
RECIPIENT = "0x1425b174d1be627a1216f1871db61a89a4f58fe9f667cad778160699b3fdb22"
SEQUENCER = "0x1176a1bd84444c89232ec27754698e5d2e7e1a7f1539f12027f28b23ec9f3d8"
STRK = "0x4718f5a0fc34cc1af16a1cdee98ffb20c31f5cd61d6ab07201858f4287c938d"
USDC = "0x33068f6539f8e6e6b131e6b2b814e6c34a5224bc66947c47dab9dfee93b35fb"

TRANSFER_SELECTOR = hex(get_selector_from_name("Transfer"))
APPROVAL_SELECTOR = hex(get_selector_from_name("Approval"))
EXECUTED_SELECTOR = hex(get_selector_from_name("TransactionExecuted"))

FEE = 0xB0C04EAE32B00
BLOCK_NUMBER = 4512380
BLOCK_HASH = "0x142a76b48f1c54012a93e6fe525cc5d1e04bb3543c95e215c5121576d456da4"
REVERT_REASON = (
    "Transaction execution has failed:\n0: Error in the called contract "
    f"(contract address: {PAYER}):\nExecution failed. Failure reason:\n"
    "(0x753235365f737562204f766572666c6f77 ('u256_sub Overflow')).\n"
)


def felt(value: int | str) -> str:
    """A felt as the spec writes it: lowercase hex, no zero padding."""
    return hex(int(value, 16) if isinstance(value, str) else value)


@dataclass(frozen=True)
class Transfer:
    """An ERC-20 ``Transfer``; ``keyed`` puts from/to in the keys (OpenZeppelin)."""

    token: str = STRK
    to: str = RECIPIENT
    amount: int = 25 * 10**18
    sender: str = PAYER
    keyed: bool = False

    def event(self) -> dict[str, Any]:
        return _erc20_event(self, TRANSFER_SELECTOR, self.sender, self.to)


@dataclass(frozen=True)
class Approval:
    """An ERC-20 ``Approval``: the payer allowed a spend but moved nothing."""

    token: str = STRK
    spender: str = RECIPIENT
    amount: int = 25 * 10**18
    owner: str = PAYER
    keyed: bool = False

    def event(self) -> dict[str, Any]:
        return _erc20_event(self, APPROVAL_SELECTOR, self.owner, self.spender)


TokenEvent = Transfer | Approval
DEFAULT_TRANSFER = Transfer()


@dataclass(frozen=True)
class Receipt:
    """What an INVOKE receipt says; its transaction hash is the one requested."""

    finality_status: str
    execution_status: str = "SUCCEEDED"
    token_event: TokenEvent | None = DEFAULT_TRANSFER
    revert_reason: str | None = None
    payer: str = PAYER
    fee: int = FEE
    block_number: int = BLOCK_NUMBER
    block_hash: str | None = BLOCK_HASH


@dataclass(frozen=True)
class JsonRpcError:
    code: int
    message: str
    data: Any = None


TX_HASH_NOT_FOUND = JsonRpcError(29, "Transaction hash not found")


@dataclass(frozen=True)
class Step:
    """One state of a scripted transaction, as both tx methods report it.

    A method with nothing to report (no receipt before pre-confirmation) answers
    ``error``. ``http_status`` replaces the whole answer with a bare HTTP error.
    """

    finality_status: str | None = None
    receipt: Receipt | None = None
    error: JsonRpcError = TX_HASH_NOT_FOUND
    http_status: int | None = None
    latency: float = 0.0

    def status_result(self) -> dict[str, str] | None:
        """What getTransactionStatus reports, or None when it answers ``error``."""
        if self.receipt is None:
            if self.finality_status is None:
                return None
            return {"finality_status": self.finality_status}

        status = {
            "finality_status": self.receipt.finality_status,
            "execution_status": self.receipt.execution_status,
        }
        if self.receipt.revert_reason is not None:
            status["failure_reason"] = self.receipt.revert_reason
        return status


def not_found(*, latency: float = 0.0) -> Step:
    return Step(latency=latency)


def received(*, latency: float = 0.0) -> Step:
    return Step(finality_status="RECEIVED", latency=latency)


def candidate(*, latency: float = 0.0) -> Step:
    return Step(finality_status="CANDIDATE", latency=latency)


def pre_confirmed(
    transfer: TokenEvent | None = DEFAULT_TRANSFER, *, latency: float = 0.0
) -> Step:
    # A pre-confirmed block has a number but no hash yet.
    receipt = Receipt("PRE_CONFIRMED", token_event=transfer, block_hash=None)
    return Step(receipt=receipt, latency=latency)


def accepted_on_l2(
    transfer: TokenEvent | None = DEFAULT_TRANSFER,
    *,
    block_hash: str | None = BLOCK_HASH,
    latency: float = 0.0,
) -> Step:
    """``block_hash=None`` is Pathfinder's "pre-latest" block: accepted, unhashed."""
    receipt = Receipt("ACCEPTED_ON_L2", token_event=transfer, block_hash=block_hash)
    return Step(receipt=receipt, latency=latency)


def accepted_on_l1(
    transfer: TokenEvent | None = DEFAULT_TRANSFER, *, latency: float = 0.0
) -> Step:
    return Step(
        receipt=Receipt("ACCEPTED_ON_L1", token_event=transfer), latency=latency
    )


def reverted(reason: str = REVERT_REASON, *, latency: float = 0.0) -> Step:
    receipt = Receipt(
        "ACCEPTED_ON_L2",
        execution_status="REVERTED",
        token_event=None,
        revert_reason=reason,
    )
    return Step(receipt=receipt, latency=latency)


def rpc_error(
    code: int, message: str, *, data: Any = None, latency: float = 0.0
) -> Step:
    return Step(error=JsonRpcError(code, message, data), latency=latency)


def http_error(status: int = 500, *, latency: float = 0.0) -> Step:
    return Step(http_status=status, latency=latency)


def build_receipt(tx_hash: str | int, receipt: Receipt) -> dict[str, Any]:
    """A receipt result in the spec 0.10.2 shape of the shared fixtures."""
    result: dict[str, Any] = {
        "type": "INVOKE",
        "transaction_hash": felt(tx_hash),
        "actual_fee": {"amount": felt(receipt.fee), "unit": "FRI"},
        "execution_status": receipt.execution_status,
        "finality_status": receipt.finality_status,
        "block_number": receipt.block_number,
        "messages_sent": [],
        "events": _receipt_events(tx_hash, receipt),
        "execution_resources": {"l1_gas": 0, "l1_data_gas": 128, "l2_gas": 1036480},
    }
    if receipt.block_hash is not None:
        result["block_hash"] = felt(receipt.block_hash)
    if receipt.revert_reason is not None:
        result["revert_reason"] = receipt.revert_reason
    return result


def _receipt_events(tx_hash: str | int, receipt: Receipt) -> list[dict[str, Any]]:
    # One contract emits one layout: a keyed STRK payment means a keyed STRK fee.
    token_event = receipt.token_event
    keyed_strk = (
        token_event is not None and token_event.keyed and _is(token_event.token, STRK)
    )
    fee = Transfer(STRK, SEQUENCER, receipt.fee, receipt.payer, keyed=keyed_strk)

    # A reverted transaction undoes everything except paying its fee.
    if receipt.execution_status == "REVERTED":
        return [fee.event()]

    executed = _event(receipt.payer, [EXECUTED_SELECTOR, felt(tx_hash)], ["0x1"] * 3)
    token = [token_event.event()] if token_event is not None else []
    return [*token, executed, fee.event()]


def _erc20_event(
    event: TokenEvent, selector: str, first: str, second: str
) -> dict[str, Any]:
    # A u256 travels as two felts, the low 128 bits first.
    amount = [felt(event.amount % 2**128), felt(event.amount >> 128)]
    parties = [felt(first), felt(second)]
    if event.keyed:
        return _event(event.token, [selector, *parties], amount)
    return _event(event.token, [selector], [*parties, *amount])


def _event(source: str, keys: list[str], data: list[str]) -> dict[str, Any]:
    return {"from_address": felt(source), "keys": keys, "data": data}


def _is(address: str, other: str) -> bool:
    return int(address, 16) == int(other, 16)


class _Reply(NamedTuple):
    body: dict[str, Any]
    latency: float = 0.0
    http_status: int | None = None


class StarknetNode:
    """A JSON-RPC node for FullNodeClient; unscripted transactions are not found.

    Each receipt request for a scripted hash answers the next step, and the last
    step repeats. A status request reports the step of the latest receipt
    answer (the first step before any), so a checker that falls back to the
    status after a missing receipt sees one consistent state.
    """

    def __init__(
        self, *, chain_id: str = SN_SEPOLIA, spec_version: str = SPEC_VERSION
    ) -> None:
        self.chain_id = chain_id
        self.spec_version = spec_version
        self.calls: list[tuple[str, Any]] = []
        self._scripts: dict[int, tuple[Step, ...]] = {}
        self._receipt_answers: dict[int, int] = {}
        self._lock = threading.Lock()

        app = web.Application()
        app.router.add_post("/rpc", self._handle)
        self._server = LocalServer(app, name="starknet-node")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}/rpc"

    def start(self) -> Self:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def script(self, tx_hash: str | int, *steps: Step) -> None:
        """Replace the script of ``tx_hash`` and start it from its first step."""
        if not steps:
            raise ValueError("a script needs at least one step")
        with self._lock:
            self._scripts[_to_int(tx_hash)] = steps
            self._receipt_answers.pop(_to_int(tx_hash), None)

    def count(self, method: str, tx_hash: str | int | None = None) -> int:
        """Requests for ``method`` (``starknet_`` optional), for one hash if given."""
        name = method if method.startswith("starknet_") else f"starknet_{method}"
        with self._lock:
            calls = list(self.calls)
        return sum(
            1
            for called, params in calls
            if called == name
            and (tx_hash is None or _tx_hash_param(params) == _to_int(tx_hash))
        )

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json()
        except ValueError:
            return web.json_response(_error(None, JsonRpcError(-32700, "Parse error")))
        messages = payload if isinstance(payload, list) else [payload]
        replies = [self._reply(message) for message in messages]

        # A batch shares one HTTP answer, so it waits for its slowest step.
        await asyncio.sleep(max((reply.latency for reply in replies), default=0.0))
        failures = [reply.http_status for reply in replies if reply.http_status]
        if failures:
            return web.Response(status=failures[0], text="scripted node failure")

        bodies = [reply.body for reply in replies]
        return web.json_response(bodies if isinstance(payload, list) else bodies[0])

    def _reply(self, message: Any) -> _Reply:
        if not isinstance(message, dict):
            return _Reply(_error(None, JsonRpcError(-32600, "Invalid Request")))
        request_id, method = message.get("id"), message.get("method")
        if not isinstance(method, str):
            return _Reply(_error(request_id, JsonRpcError(-32600, "Invalid Request")))
        params = message.get("params", [])
        with self._lock:
            self.calls.append((method, params))

        if method == "starknet_specVersion":
            return _Reply(_result(request_id, self.spec_version))
        if method == "starknet_chainId":
            return _Reply(_result(request_id, self.chain_id))
        if method not in (RECEIPT_METHOD, STATUS_METHOD):
            return _Reply(_error(request_id, JsonRpcError(-32601, "Method not found")))

        tx_hash = _tx_hash_param(params)
        if tx_hash is None:
            return _Reply(_error(request_id, JsonRpcError(-32602, "Invalid params")))
        step = self._next_step(method, tx_hash)
        body = _answer_step(request_id, method, tx_hash, step)
        return _Reply(body, step.latency, step.http_status)

    def _next_step(self, method: str, tx_hash: int) -> Step:
        with self._lock:
            steps = self._scripts.get(tx_hash, (not_found(),))
            answered = self._receipt_answers.get(tx_hash, 0)
            if method == RECEIPT_METHOD:
                self._receipt_answers[tx_hash] = answered + 1
                return steps[min(answered, len(steps) - 1)]
            return steps[min(max(answered - 1, 0), len(steps) - 1)]


def _answer_step(
    request_id: Any, method: str, tx_hash: int, step: Step
) -> dict[str, Any]:
    if method == RECEIPT_METHOD and step.receipt is not None:
        return _result(request_id, build_receipt(tx_hash, step.receipt))
    status = step.status_result()
    if method == STATUS_METHOD and status is not None:
        return _result(request_id, status)
    return _error(request_id, step.error)


def _result(request_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _error(request_id: Any, error: JsonRpcError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.data is not None:
        body["data"] = error.data
    return {"jsonrpc": "2.0", "id": request_id, "error": body}


def _tx_hash_param(params: Any) -> int | None:
    # starknet-py names its params; other clients may send them by position.
    value = params.get("transaction_hash") if isinstance(params, dict) else None
    if isinstance(params, list) and params:
        value = params[0]
    try:
        return _to_int(value) if isinstance(value, str | int) else None
    except ValueError:
        return None


def _to_int(tx_hash: str | int) -> int:
    return int(tx_hash, 16) if isinstance(tx_hash, str) else tx_hash


@pytest.fixture
def starknet_node() -> Iterator[StarknetNode]:
    """A started node with nothing scripted, fresh for each test."""
    with StarknetNode() as node:
        yield node


@pytest.fixture
def starknet_node_factory() -> Iterator[Callable[..., StarknetNode]]:
    """Starts more nodes (a primary and its fallbacks); all stop after the test."""
    nodes: list[StarknetNode] = []

    def start_node(
        *, chain_id: str = SN_SEPOLIA, spec_version: str = SPEC_VERSION
    ) -> StarknetNode:
        node = StarknetNode(chain_id=chain_id, spec_version=spec_version).start()
        nodes.append(node)
        return node

    yield start_node
    for node in nodes:
        node.stop()
